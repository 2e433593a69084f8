"""The two servers a run compares: ours (`smb2auth serve`, in this process or as a subprocess) and the
oracle: Samba's standalone smbd (tests/peers.py: loopback, a free high port, its own temp dir, stopped by PID;
one account, alice / Passw0rd! in TESTGRP; `server signing = mandatory`, our default), or the smbd of a
throw-away Samba AD DC (tests/addc.py: its Administrator in its domain SMB2AUTH, checked against its SAM; a
plain user like alice gets STATUS_INTERNAL_ERROR from that DC's smbd, which cannot map her to a Unix id).
Ours knows the oracle's account and announces names as long as the oracle's."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from fuzz.differential.script import Account
from smb2auth.ntlm.server import TargetInfo

__all__ = ["ACCOUNT", "SMBD_GLOBAL", "TARGET", "Oracle", "addc", "oracle", "ours", "smbd"]

ACCOUNT = Account()
# The names our CHALLENGE announces have the lengths of smbd's (a standalone smbd names its NetBIOS name,
# PEERSMBD, as both domain and computer), so a flip at one byte index of the NT response lands on the same
# field of the blob for both servers.
OURS_NB_NAME = "SMB2AUTH"
TARGET = TargetInfo(nb_domain=OURS_NB_NAME, nb_computer=OURS_NB_NAME)
SMBD_GLOBAL = "  server signing = mandatory\n"


@dataclass(frozen=True)
class Oracle:
    """Where the oracle listens, the account both servers know, and the names ours announces."""

    address: tuple[str, int]
    account: Account = ACCOUNT
    target: TargetInfo = TARGET


@contextlib.contextmanager
def ours(
    mode: str = "inproc", account: Account = ACCOUNT, target: TargetInfo = TARGET
) -> Iterator[tuple[str, int]]:
    """Our server's address: `inproc` runs smb2auth.testing.running_server (the asyncio server in a thread),
    `subprocess` runs `python -m smb2auth serve` on a free loopback port."""
    if mode == "inproc":
        from smb2auth.testing import running_server

        with running_server(username=account.user, password=account.password, domain=account.domain,
                            target=target) as srv:
            yield srv.host, srv.port
        return
    from tests.peers import free_port, wait_for_port

    port = free_port()
    cmd = [sys.executable, "-m", "smb2auth", "serve", "--listen", str(port), "--domain", target.nb_domain,
           "--computer", target.nb_computer, "--user", f"{account.user}:{account.password}"]
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


@contextlib.contextmanager
def addc() -> Iterator[Oracle]:
    """The smbd of a throw-away Samba AD DC (tests.addc.running_addc; ~20 s to provision), port 445 on a
    loopback address of its own; ours announces the DC's names."""
    from tests.addc import running_addc

    with running_addc() as dc:
        account = Account(user="Administrator", password=dc.admin_password, domain=dc.domain)
        target = TargetInfo(nb_domain=dc.domain, nb_computer=dc.dc_name, dns_domain=dc.dns_domain,
                            dns_computer=f"{dc.dc_name.lower()}.{dc.dns_domain}")
        yield Oracle((dc.host, 445), account, target)


@contextlib.contextmanager
def oracle(name: str = "smbd") -> Iterator[Oracle]:
    """`smbd` (standalone, the default) or `addc`."""
    if name == "addc":
        with addc() as found:
            yield found
        return
    with smbd() as address:
        yield Oracle(address)
