"""serve, http-serve and proxy with --netlogon against the Samba AD DC (tests/addc.py): smbclient, curl
--ntlm and curl --proxy-ntlm log in as the domain user; a wrong machine password stops the command before
it listens; options that do not fit are usage errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.addc import DomainController
from tests.peers import require_program
from tests.test_cli_errors import error_line, run_cli

pytestmark = pytest.mark.interop

LISTENING = re.compile(r"listening on (?:http://)?127\.0\.0\.1:(\d+)")


@pytest.fixture(scope="module")
def netlogon_args(addc: DomainController, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    secret = tmp_path_factory.mktemp("netlogon") / "machine-password"
    secret.write_text(addc.machine_password + "\n")
    secret.chmod(0o600)
    return ["--netlogon", addc.host, "--machine-account", addc.machine, "--machine-password-file",
            str(secret), "--domain", addc.domain, "--dns-domain", addc.dns_domain]


@contextmanager
def running(command: str, *argv: str) -> Iterator[tuple[int, list[str]]]:
    """`smb2auth COMMAND --listen 127.0.0.1:0 ARGV` until the block ends: the port, and its output once
    it has stopped."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "smb2auth.commands.main", command, "--listen", "127.0.0.1:0", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            found = LISTENING.search(line)
            if found:
                break
        else:
            raise AssertionError(f"{command} exited with {proc.wait()}: {''.join(output)}")
        yield int(found.group(1)), output
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        output.append(rest)


@pytest.mark.parametrize("logon_call", ["auto", "with-flags"])
def test_serve_smbclient_domain_user(netlogon_args: list[str], addc: DomainController,
                                     logon_call: str) -> None:
    smbclient = require_program("smbclient", "/usr/bin/smbclient")
    with running("serve", *netlogon_args, "--logon-call", logon_call) as (port, output):
        proc = subprocess.run(
            [smbclient, "//127.0.0.1/IPC$", "-p", str(port), "-U", f"{addc.user}%{addc.password}", "-W",
             addc.domain, "--use-kerberos=off", "-s", "/dev/null", "-m", "SMB3_11",
             "--client-protection=sign", "-c", "exit"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    log = "".join(output)
    assert f"login ok user={addc.domain}\\{addc.user}" in log and "signed" in log
    assert addc.machine_password not in log


def test_http_serve_curl_ntlm_names_the_groups(netlogon_args: list[str], addc: DomainController) -> None:
    curl = require_program("curl", "/usr/bin/curl")
    with running("http-serve", *netlogon_args) as (port, _):
        url = f"http://127.0.0.1:{port}/"
        ok = subprocess.run([curl, "-s", "--ntlm", "-u", f"{addc.domain}\\{addc.user}:{addc.password}", url],
                            capture_output=True, text=True, timeout=60)
        refused = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--ntlm", "-u",
                                  f"{addc.domain}\\{addc.user}:wrong", url],
                                 capture_output=True, text=True, timeout=60)
    who = json.loads(ok.stdout)
    assert (who["user"], who["domain"]) == (addc.user, addc.domain)
    assert who["sid"].startswith("S-1-5-21-") and f"{who['sid'].rsplit('-', 1)[0]}-513" in who["groups"]
    assert refused.stdout == "401"


class _Origin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"origin\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_proxy_curl_proxy_ntlm(netlogon_args: list[str], addc: DomainController,
                               domain_accounts: dict[str, str]) -> None:
    curl = require_program("curl", "/usr/bin/curl")
    origin = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    try:
        # a proxy that allows by group: alice is in engineers, dave is not
        with running("proxy", *netlogon_args, "--require-group", domain_accounts["engineers"]) as (port, out):
            def fetch(user: str, password: str) -> str:
                return subprocess.run(
                    [curl, "-s", "-w", " %{http_code}", "--proxy", f"http://127.0.0.1:{port}", "--proxy-ntlm",
                     "--proxy-user", f"{addc.domain}\\{user}:{password}",
                     f"http://127.0.0.1:{origin.server_address[1]}/"],
                    capture_output=True, text=True, timeout=60).stdout

            assert fetch(addc.user, addc.password) == "origin\n 200"
            assert fetch(addc.user, "wrong").endswith(" 407")
            assert fetch("dave", "D4ve!Passw0rd").endswith(" 407")
    finally:
        origin.shutdown()
    assert "status=STATUS_LOGON_TYPE_NOT_GRANTED" in "".join(out) and "none of the groups" in "".join(out)


def test_wrong_machine_password_stops_at_start(addc: DomainController, tmp_path: Path) -> None:
    secret = tmp_path / "machine-password"
    secret.write_text("not-the-machine-password\n")
    code, out, err = run_cli("serve", "--listen", "127.0.0.1:0", "--netlogon", addc.host, "--machine-account",
                             addc.machine, "--machine-password-file", str(secret), "--domain", addc.domain)
    assert code == 1 and "listening" not in out
    assert "STATUS_ACCESS_DENIED" in error_line(err) and "not-the-machine-password" not in err


NETLOGON = ["--netlogon", "127.0.0.1", "--machine-account", "HARNESS", "--machine-password-file"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--netlogon", "127.0.0.1"], "needs --machine-account"),
        (["--machine-account", "HARNESS"], "need --netlogon"),
        ([*NETLOGON, "/nonexistent"], "--machine-password-file /nonexistent"),
        ([*NETLOGON, "/dev/null"], "--machine-password-file /dev/null: empty"),
        ([*NETLOGON, "/dev/null", "--user", "bob:x"], "no --users or --user"),
        ([*NETLOGON, "/dev/null", "--computer", "OTHER"], "the computer is the machine account HARNESS"),
    ],
)
def test_option_errors(argv: list[str], message: str) -> None:
    code, _, err = run_cli("serve", "--listen", "127.0.0.1:0", *argv)
    assert code == 2 and message in error_line(err)
