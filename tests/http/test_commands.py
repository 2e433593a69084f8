"""The `http-serve` and `proxy` commands, run as real processes on loopback and torn down by PID."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smb2auth.commands._args import parse_listen
from smb2auth.http.client import request_with_ntlm
from tests.peers import free_port, wait_for_port

PASSWORD = "Passw0rd!"


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:8080", 1) == ("127.0.0.1", 8080)
    assert parse_listen(":3128", 1) == ("127.0.0.1", 3128)
    assert parse_listen("[::1]:81", 1) == ("::1", 81)
    assert parse_listen("localhost", 7) == ("localhost", 7)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_listen("h:99999", 1)


@contextlib.contextmanager
def spawn(command: str, port: int, tmp_path: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    log = tmp_path / f"{command}.log"
    with log.open("wb") as out:
        argv = [sys.executable, "-m", "smb2auth.commands.main", command, "--listen", f"127.0.0.1:{port}"]
        proc = subprocess.Popen([*argv, *extra], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, 20, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert "Traceback" not in log.read_text(), log.read_text()
    assert PASSWORD not in log.read_text()


def test_http_serve_process(tmp_path: Path) -> None:
    port = free_port()
    with spawn("http-serve", port, tmp_path, "--user", f"alice:{PASSWORD}", "--domain", "TESTGRP"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        resp = request_with_ntlm(conn, "GET", "/", username="alice", password=PASSWORD, scheme="Negotiate")
        assert resp.status == 200 and json.loads(resp.read())["user"] == "alice"
        conn.close()


def test_proxy_process_with_smbpasswd_file(tmp_path: Path, origin: tuple[str, int]) -> None:
    from smb2auth.ntlm.crypto import ntowfv1

    users = tmp_path / "smbpasswd"
    users.write_text(f"alice:1000:{'X' * 32}:{ntowfv1(PASSWORD).hex().upper()}:[U          ]:LCT-00000000:\n")
    port = free_port()
    with spawn("proxy", port, tmp_path, "--users", str(users)):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        url = f"http://{origin[0]}:{origin[1]}/p"
        conn.request("GET", url)
        first = conn.getresponse()
        assert first.status == 407
        first.read()
        resp = request_with_ntlm(conn, "GET", url, username="alice", password=PASSWORD, proxy=True)
        assert resp.status == 200 and json.loads(resp.read())["path"] == "/p"
        conn.close()


def test_http_serve_idle_timeout_and_connection_cap(tmp_path: Path) -> None:
    import socket
    import time

    port = free_port()
    extra = ("--user", f"alice:{PASSWORD}", "--idle-timeout", "1", "--max-connections", "1")
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with spawn("http-serve", port, tmp_path, *extra):
        deadline = time.monotonic() + 10
        while True:  # wait_for_port's probe may still hold the one slot for a moment
            first = socket.create_connection(("127.0.0.1", port), timeout=10)
            first.sendall(request)
            answer = first.recv(4096)
            if answer.startswith(b"HTTP/1.1 401") or time.monotonic() > deadline:
                break
            first.close()
            time.sleep(0.05)
        with first:
            assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
            with socket.create_connection(("127.0.0.1", port), timeout=10) as second:
                # --max-connections 1: while `first` is open, another connection is answered 503
                assert second.recv(4096).startswith(b"HTTP/1.1 503")
            # --idle-timeout 1: the server closes `first` (EOF) once it has been silent for a second; a
            # server that never did would make recv() time out (10 s) instead
            assert first.recv(4096) == b""


def test_http_serve_groups_and_allow_group(tmp_path: Path) -> None:
    groups = tmp_path / "group"
    groups.write_text("webusers:x:1001:alice\n")
    port = free_port()
    accounts = ("--user", f"alice:{PASSWORD}", "--user", f"bob:{PASSWORD}", "--domain", "TESTGRP")
    with spawn("http-serve", port, tmp_path, *accounts, "--groups", str(groups), "--allow-group", "webusers"):
        for user, status in (("alice", 200), ("bob", 403)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            resp = request_with_ntlm(conn, "GET", "/", username=user, password=PASSWORD)
            body = resp.read()
            assert resp.status == status
            if status == 200:
                assert json.loads(body)["groups"] == ["webusers"]
            conn.close()
    log = (tmp_path / "http-serve.log").read_text()
    assert "http login ok user=alice " in log and "groups=webusers" in log


def test_proxy_identity_header(tmp_path: Path, origin: tuple[str, int]) -> None:
    port = free_port()
    with spawn("proxy", port, tmp_path, "--user", f"alice:{PASSWORD}", "--domain", "TESTGRP",
               "--identity-header", "X-Authenticated-User"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        resp = request_with_ntlm(conn, "GET", f"http://{origin[0]}:{origin[1]}/", username="alice",
                                 password=PASSWORD, domain="TESTGRP", proxy=True,
                                 headers={"X-Authenticated-User": "TESTGRP\\root"})
        assert json.loads(resp.read())["headers"]["x-authenticated-user"] == "TESTGRP\\alice"
        conn.close()


def test_http_serve_winrm_echo_with_pywinrm(tmp_path: Path) -> None:
    try:
        from winrm.transport import Transport
    except ImportError:
        from tests.peers import missing_peer

        missing_peer("pywinrm (pip install -e '.[test]')")
        raise
    port = free_port()
    with spawn("http-serve", port, tmp_path, "--user", f"alice:{PASSWORD}", "--winrm-echo"):
        transport = Transport(f"http://127.0.0.1:{port}/wsman", auth_method="ntlm", username="alice",
                              password=PASSWORD, message_encryption="always")
        assert transport.send_message(b"<s:Envelope/>") == b"<s:Envelope/>"
        transport.close_session()


def test_proxy_workers_pin_each_client_connection(tmp_path: Path) -> None:
    """`proxy --workers 2` (on asyncio's own loop; the other proxy tests run on uvloop when installed):
    every client connection is served whole by one worker, its origin NTLM handshake on the upstream
    pinned to it (RFC 4559 6), and each worker's logins reach the parent's log stamped with that worker's
    pid."""
    from smb2auth.http.client import request_with_auth
    from smb2auth.http.wsgi import running_http_server
    from tests.http.pair import clients, config

    port = free_port()
    connections = 6
    with running_http_server(config()) as origin, \
            spawn("proxy", port, tmp_path, "--user", f"alice:{PASSWORD}", "--workers", "2",
                  "--loop", "asyncio") as proc:
        workers = {int(pid) for pid in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                      text=True, timeout=10).stdout.split()}
        assert len(workers) == 2
        url = f"http://{origin.host}:{origin.port}/"
        for _ in range(connections):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            resp = request_with_auth(conn, "GET", url, context_factory=clients(), proxy=True)
            assert resp.status == 401 and resp.headers["Proxy-Support"] == "Session-Based-Authentication"
            resp.read()
            resp = request_with_auth(conn, "GET", url, context_factory=clients())
            assert resp.status == 200 and json.loads(resp.read())["user"] == "alice"
            conn.request("GET", url)  # no credentials: the pinned origin connection still knows alice
            again = conn.getresponse()
            assert again.status == 200 and json.loads(again.read())["user"] == "alice"
            conn.close()
    log = (tmp_path / "proxy.log").read_text()
    assert "proxy: 2 processes on the asyncio event loop" in log
    logins = [line for line in log.splitlines() if "http login ok" in line]
    assert len(logins) == connections
    assert {int(line.rsplit("worker=", 1)[1].split()[0]) for line in logins} <= workers
