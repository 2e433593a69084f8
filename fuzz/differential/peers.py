"""The two servers a run compares: ours (`smb2auth serve`, in this process or as a subprocess) and Samba's
smbd (tests/peers.py: loopback, a free high port, its own temp dir, stopped by PID). Both know one account,
alice / Passw0rd! in TESTGRP, and require signing (our default; smbd `server signing = mandatory`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

from fuzz.differential.script import Account
from smb2auth.ntlm.server import TargetInfo

__all__ = ["ACCOUNT", "SMBD_GLOBAL", "TARGET", "ours", "smbd"]

ACCOUNT = Account()
# The names our CHALLENGE announces have the lengths of smbd's (a standalone smbd names its NetBIOS name,
# PEERSMBD, as both domain and computer), so a flip at one byte index of the NT response lands on the same
# field of the blob for both servers.
OURS_NB_NAME = "SMB2AUTH"
TARGET = TargetInfo(nb_domain=OURS_NB_NAME, nb_computer=OURS_NB_NAME)
SMBD_GLOBAL = "  server signing = mandatory\n"


@contextlib.contextmanager
def ours(mode: str = "inproc") -> Iterator[tuple[str, int]]:
    """Our server's address: `inproc` runs smb2auth.testing.running_server (the asyncio server in a thread),
    `subprocess` runs `python -m smb2auth serve` on a free loopback port."""
    if mode == "inproc":
        from smb2auth.testing import running_server

        with running_server(username=ACCOUNT.user, password=ACCOUNT.password, domain=ACCOUNT.domain,
                            target=TARGET) as srv:
            yield srv.host, srv.port
        return
    from tests.peers import free_port, wait_for_port

    port = free_port()
    cmd = [sys.executable, "-m", "smb2auth", "serve", "--listen", str(port), "--domain", OURS_NB_NAME,
           "--user", f"{ACCOUNT.user}:{ACCOUNT.password}"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ), start_new_session=True)
    try:
        wait_for_port(port, proc, 30.0, None)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def smbd() -> Iterator[tuple[str, int]]:
    """A private smbd with mandatory signing (tests.peers.running_smbd)."""
    from tests.peers import running_smbd

    with running_smbd(SMBD_GLOBAL) as server:
        yield "127.0.0.1", server.port
