"""Raw NTLM handshakes per second: smb2auth (client + server + LocalAuthority, NTLMv2 with MIC) vs pyspnego,
each given the password or the NT hash on the client side, both acceptors holding the hashes
(pyspnego's in its smbpasswd-form NTLM_USER_FILE), both initiators naming the same target
(MsvAvTargetName cifs/bench.example). Rounds alternate; the floor is the primitives of benchmarks/_floor.py.

    python benchmarks/bench_ntlm.py [--seconds N] [--rounds N] [--profile]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm import NtlmClient, NtlmServer, TargetInfo, crypto
from smb2auth.ntlm.messages import AuthenticateMessage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _floor  # noqa: E402
from _harness import (  # noqa: E402
    BENCH_HOST,
    BENCH_SPN,
    Contender,
    compare,
    pyspnego_credentials,
    smbpasswd_users,
    versions,
)

USER, PASSWORD, DOMAIN = "alice", "Secret1", "DOM"
TARGET = TargetInfo(nb_domain=DOMAIN, nb_computer="BENCH", dns_computer=BENCH_HOST)


def authority() -> LocalAuthority:
    local = LocalAuthority()
    local.add_user(USER, PASSWORD)
    return local


def ours(password: bool) -> Callable[[], Callable[[], None]]:
    def make() -> Callable[[], None]:
        local = authority()
        user = local.get_user(USER)
        assert user is not None
        nt_hash = None if password else user.nt_hash
        secret = PASSWORD if password else None

        def handshake() -> None:
            client = NtlmClient(
                USER, secret, nt_hash=nt_hash, domain=DOMAIN, target_name=BENCH_SPN
            )
            server = NtlmServer(local, target=TARGET)
            challenge = server.step(client.step(None))  # type: ignore[arg-type]
            server.step(client.step(challenge))  # type: ignore[arg-type]
            assert server.complete and server.mic_present

        return handshake

    return make


def pyspnego(password: bool) -> Callable[[], Callable[[], None]]:
    def make() -> Callable[[], None]:
        import spnego

        user = authority().get_user(USER)
        assert user is not None
        credential, secret = pyspnego_credentials(
            USER, DOMAIN, PASSWORD, user.nt_hash, given_password=password
        )

        def handshake() -> None:
            client = spnego.client(credential, secret, hostname=BENCH_HOST, service="cifs", protocol="ntlm")
            server = spnego.server(protocol="ntlm")
            challenge = server.step(client.step())
            server.step(client.step(challenge))
            assert server.complete

        return handshake

    return make


def floor(password: bool) -> tuple[_floor.Primitive, ...]:
    """Sizes from one real handshake: the NTLMv2 blob and the three messages the MIC covers."""
    client = NtlmClient(USER, PASSWORD, domain=DOMAIN, target_name=BENCH_SPN)
    server = NtlmServer(authority(), target=TARGET)
    negotiate = client.step(None)
    assert negotiate is not None
    challenge = server.step(negotiate)
    assert challenge is not None
    authenticate = client.step(challenge)
    assert authenticate is not None
    server.step(authenticate)
    blob = len(AuthenticateMessage.unpack(authenticate).nt_response) - 16
    mic_input = len(negotiate) + len(challenge) + len(authenticate)
    return (
        *_floor.ntlm_client(PASSWORD if password else None, USER, DOMAIN, blob, mic_input),
        *_floor.ntlm_server(USER, DOMAIN, blob, mic_input),
    )


def main() -> None:
    user = authority().get_user(USER)
    assert user is not None and user.lm_hash is not None
    about = [
        f"ours: {versions('smb2auth', 'pycryptodome', 'cryptography')}: NtlmClient + NtlmServer + "
        "LocalAuthority (NT hash precomputed), NTLMv2 with MIC and KEY_EXCH; MD4 from pycryptodome, "
        f"RC4 from {crypto.rc4_backend()}, MD5 from {crypto.md5_backend()}",
        f"peer: {versions('pyspnego', 'cryptography')}: spnego.client/server(protocol='ntlm'), pure-Python "
        "NTLM (MD4, DES in Python; RC4 from cryptography); the acceptor reads NTLM_USER_FILE in smbpasswd "
        "form (hashes precomputed)",
        f"both: user {DOMAIN}\\{USER}, initiator target {BENCH_SPN}; client given the password "
        "(NTOWFv1 per handshake) or the NT hash",
    ]
    contenders = [
        Contender("smb2auth", "password", ours(True), ours=True, floor=floor(True)),
        Contender("smb2auth", "NT hash", ours(False), ours=True, floor=floor(False)),
        Contender("pyspnego", "password", pyspnego(True)),
        Contender("pyspnego", "NT hash", pyspnego(False)),
    ]
    with smbpasswd_users(DOMAIN, USER, user.lm_hash, user.nt_hash):
        compare("NTLMv2+MIC handshakes", "pyspnego", contenders, about)


if __name__ == "__main__":
    main()
