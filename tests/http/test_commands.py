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
