"""SPNEGO + NTLMv2 handshakes per second (client + server + LocalAuthority, NTLM MIC and mechListMIC):
smb2auth vs pyspnego 0.12 `protocol="negotiate"`, measured in the same run.

    python benchmarks/bench_spnego.py [--seconds N] [--rounds N] [--profile]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm import NtlmClient, NtlmServer, TargetInfo
from smb2auth.spnego import SpnegoClient, SpnegoServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import compare, pyspnego_users  # noqa: E402

USER, PASSWORD, DOMAIN = "alice", "Secret1", "DOM"


def ours() -> Callable[[], None]:
    authority = LocalAuthority()
    authority.add_user(USER, PASSWORD)
    target = TargetInfo()

    def handshake() -> None:
        server = SpnegoServer(NtlmServer(authority, target=target))
        client = SpnegoClient(NtlmClient(USER, PASSWORD, domain=DOMAIN))
        token = client.step(server.initial_token())
        while token is not None:
            token = client.step(server.step(token))
        assert server.complete and client.complete and server.mic_exchanged

    return handshake


def pyspnego() -> Callable[[], None]:
    import spnego

    def handshake() -> None:
        client = spnego.client(f"{DOMAIN}\\{USER}", PASSWORD, protocol="negotiate")
        server = spnego.server(protocol="negotiate")
        token = client.step()
        while not client.complete:
            token = client.step(server.step(token))
        assert server.complete

    return handshake


def main() -> None:
    with pyspnego_users(DOMAIN, USER, PASSWORD):
        compare("SPNEGO+NTLMv2 handshakes", ours(), pyspnego, "pyspnego")


if __name__ == "__main__":
    main()
