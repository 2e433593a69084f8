"""Squid, the reference proxy for NTLM (issue 12): Debian's squid with Samba's `ntlm_auth` as its NTLM
helper (`--helper-protocol=squid-2.5-ntlmssp --password=...`: real NTLMv2 checks, no domain needed).

Runs in the foreground of its own session on a loopback port, every file under a temp dir, and is torn
down by PID. A missing squid or ntlm_auth is a skip locally and a failure when SMB2AUTH_REQUIRE_PEERS=1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.peers import free_port, missing_peer, wait_for_port


@dataclass
class Squid:
    port: int
    base: Path

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def _program(name: str, *candidates: str) -> str:
    path = shutil.which(name) or next((c for c in candidates if os.access(c, os.X_OK)), None)
    if path is None:
        missing_peer(f"{name} (apt-get install squid winbind)")
        raise AssertionError("unreachable")
    return path


@contextlib.contextmanager
def running_squid(password: str, *, workers: int = 1, children: int = 5) -> Iterator[Squid]:
    """Squid demanding NTLM from every client (any user name, this password), forwarding to loopback."""
    squid = _program("squid", "/usr/sbin/squid")
    ntlm_auth = _program("ntlm_auth", "/usr/bin/ntlm_auth")
    base = Path(tempfile.mkdtemp(prefix="smb2auth-squid-"))
    # squid and its helpers run as the unprivileged "proxy" user: the tree must be theirs to write
    base.chmod(0o777)
    for d in ("lock", "state", "cache", "private", "logs", "run"):
        (base / d).mkdir(mode=0o777)
        (base / d).chmod(0o777)
    (base / "smb.conf").write_text(
        "[global]\n  workgroup = TESTGRP\n  netbios name = SQUIDHOST\n  server role = standalone server\n"
        f"  lock directory = {base}/lock\n  state directory = {base}/state\n"
        f"  cache directory = {base}/cache\n  private dir = {base}/private\n  ntlm auth = ntlmv2-only\n"
    )
    port = free_port()
    helper = (f"{ntlm_auth} --configfile={base}/smb.conf --helper-protocol=squid-2.5-ntlmssp"
              f" --password={password}")
    conf = base / "squid.conf"
    conf.write_text(f"""http_port 127.0.0.1:{port}
pid_filename {base}/run/squid.pid
cache_log {base}/logs/cache.log
access_log none
cache deny all
cache_mem 8 MB
coredump_dir {base}
pinger_enable off
workers {workers}
auth_param ntlm program {helper}
auth_param ntlm children {children} startup={children}
auth_param ntlm keep_alive on
acl authed proxy_auth REQUIRED
http_access allow authed
http_access deny all
shutdown_lifetime 0 seconds
""")
    log = base / "logs" / "stdout"
    with log.open("ab") as out:
        # -N is one process (no SMP workers); --foreground keeps the master in front of its workers
        mode = "-N" if workers == 1 else "--foreground"
        proc = subprocess.Popen([squid, mode, "-f", str(conf)], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, proc, 30.0, base / "logs" / "cache.log")
        yield Squid(port, base)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        shutil.rmtree(base, ignore_errors=True)
