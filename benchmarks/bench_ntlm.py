"""Raw NTLM handshakes per second: smb2auth (client + server + LocalAuthority, NTLMv2 with MIC) vs pyspnego.

    python benchmarks/bench_ntlm.py [--seconds N] [--rounds N] [--profile]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm import NtlmClient, NtlmServer, TargetInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import compare, pyspnego_users  # noqa: E402

USER, PASSWORD, DOMAIN = "alice", "Secret1", "DOM"


def ours() -> Callable[[], None]:
    authority = LocalAuthority()
    authority.add_user(USER, PASSWORD)
    target = TargetInfo()

    def handshake() -> None:
        client = NtlmClient(USER, PASSWORD, domain=DOMAIN)
        server = NtlmServer(authority, target=target)
        challenge = server.step(client.step(None))  # type: ignore[arg-type]
        server.step(client.step(challenge))  # type: ignore[arg-type]
        assert server.complete and server.mic_present

    return handshake


def pyspnego() -> Callable[[], None]:
    import spnego

    def handshake() -> None:
        client = spnego.client(f"{DOMAIN}\\{USER}", PASSWORD, protocol="ntlm")
        server = spnego.server(protocol="ntlm")
        challenge = server.step(client.step())
        server.step(client.step(challenge))
        assert server.complete

    return handshake


def main() -> None:
    with pyspnego_users(DOMAIN, USER, PASSWORD):
        compare("NTLMv2+MIC handshakes", ours(), pyspnego, "pyspnego")


if __name__ == "__main__":
    main()
