"""SPNEGO + NTLMv2 handshakes per second (client + server + LocalAuthority, NTLM MIC and mechListMIC):
smb2auth vs pyspnego `protocol="negotiate"`, configured as in bench_ntlm.py (smbpasswd-form user file for
pyspnego's acceptor, the same target name, the client given the password or the NT hash). The floor is
bench_ntlm's plus the mechListMIC's primitives; the DER codec's cost is printed beside it.

    python benchmarks/bench_spnego.py [--seconds N] [--rounds N] [--profile]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm import NtlmClient, NtlmServer, TargetInfo, crypto
from smb2auth.ntlm.messages import AuthenticateMessage
from smb2auth.spnego import SpnegoClient, SpnegoServer
from smb2auth.spnego.tokens import decode, decode_reference, encode_reference, mech_types_der

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


def _pair(local: LocalAuthority, password: bool) -> tuple[SpnegoClient, SpnegoServer]:
    user = local.get_user(USER)
    assert user is not None
    secret, nt_hash = (PASSWORD, None) if password else (None, user.nt_hash)
    ntlm = NtlmClient(USER, secret, nt_hash=nt_hash, domain=DOMAIN, target_name=BENCH_SPN)
    return SpnegoClient(ntlm), SpnegoServer(NtlmServer(local, target=TARGET))


def ours(password: bool) -> Callable[[], Callable[[], None]]:
    def make() -> Callable[[], None]:
        local = authority()

        def handshake() -> None:
            client, server = _pair(local, password)
            token = client.step(server.initial_token())
            while token is not None:
                token = client.step(server.step(token))
            assert server.complete and client.complete and server.mic_exchanged

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
            client = spnego.client(
                credential, secret, hostname=BENCH_HOST, service="cifs", protocol="negotiate"
            )
            server = spnego.server(protocol="negotiate")
            token = client.step()
            while not client.complete:
                token = client.step(server.step(token))
            assert server.complete

        return handshake

    return make


def tokens() -> list[bytes]:
    """The SPNEGO tokens of one real handshake, in order (the server's hint first)."""
    client, server = _pair(authority(), True)
    out = [server.initial_token()]
    token = client.step(out[0])
    while token is not None:
        out.append(token)
        answer = server.step(token)
        assert answer is not None
        out.append(answer)
        token = client.step(answer)
    return out


def floor(password: bool) -> tuple[_floor.Primitive, ...]:
    """bench_ntlm's floor with the NTLM messages carried here, plus the mechListMIC on both sides."""
    parsed = [decode(t) for t in tokens()]
    ntlm = [getattr(p, "mech_token", None) or getattr(p, "response_token", None) for p in parsed]
    negotiate, challenge, authenticate = (m for m in ntlm if m)
    blob = len(AuthenticateMessage.unpack(authenticate).nt_response) - 16
    mic_input = len(negotiate) + len(challenge) + len(authenticate)
    mech_types = len(mech_types_der(parsed[1].mech_types))  # type: ignore[union-attr]
    return (
        *_floor.ntlm_client(PASSWORD if password else None, USER, DOMAIN, blob, mic_input),
        *_floor.mech_list_mic(mech_types),
        *_floor.ntlm_server(USER, DOMAIN, blob, mic_input),
        *_floor.mech_list_mic(mech_types),
    )


def der(reference: bool) -> Callable[[], None]:
    """Decoding and encoding the handshake's tokens: our DER fast path, or pyasn1 (the reference)."""
    raw = tokens()
    parsed = [decode(t) for t in raw]
    if reference:
        def run() -> None:
            for token in raw:
                decode_reference(token)
            for value in parsed:
                encode_reference(value)
    else:
        def run() -> None:
            for token in raw:
                decode(token)
            for value in parsed:
                value.encode()
    return run


def main() -> None:
    user = authority().get_user(USER)
    assert user is not None and user.lm_hash is not None
    about = [
        f"ours: {versions('smb2auth', 'pycryptodome', 'cryptography', 'pyasn1')}: SpnegoClient/SpnegoServer "
        "over NtlmClient/NtlmServer + LocalAuthority (NT hash precomputed), NTLM MIC and mechListMIC; "
        f"RC4 from {crypto.rc4_backend()}, MD5 from {crypto.md5_backend()}",
        f"peer: {versions('pyspnego', 'cryptography')}: spnego.client/server(protocol='negotiate'), "
        "pure-Python NTLM and SPNEGO (no gssapi installed: NTLM only); the acceptor reads NTLM_USER_FILE in "
        "smbpasswd form (hashes precomputed)",
        f"both: user {DOMAIN}\\{USER}, initiator target {BENCH_SPN}; client given the password "
        "(NTOWFv1 per handshake) or the NT hash",
    ]
    contenders = [
        Contender("smb2auth", "password", ours(True), ours=True, floor=floor(True)),
        Contender("smb2auth", "NT hash", ours(False), ours=True, floor=floor(False)),
        Contender("pyspnego", "password", pyspnego(True)),
        Contender("pyspnego", "NT hash", pyspnego(False)),
    ]
    extra = [
        ("DER codec, smb2auth fast path (not in floor)", der(False)),
        ("DER codec, pyasn1 (not in floor)", der(True)),
    ]
    with smbpasswd_users(DOMAIN, USER, user.lm_hash, user.nt_hash):
        compare("SPNEGO+NTLMv2 handshakes", "pyspnego", contenders, about, extra)


if __name__ == "__main__":
    main()
