"""The AUTHENTICATE the differential client answers each server's own CHALLENGE with (MS-NLMP 3.1.5.1.2).

`AuthSpec` holds every choice a client makes (flags, AV pairs, which responses, the session key, the MIC);
a mutation edits the spec, `build` computes a response that is cryptographically right for what the spec
says (so a server refusing it refuses the edit, not a wrong password), then the edited raw bytes, if any,
go out as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smb2auth.ntlm import crypto
from smb2auth.ntlm._session import SessionSecurity
from smb2auth.ntlm.messages import (
    NTLMSSP_NEGOTIATE_56,
    NTLMSSP_NEGOTIATE_128,
    NTLMSSP_NEGOTIATE_ALWAYS_SIGN,
    NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY,
    NTLMSSP_NEGOTIATE_KEY_EXCH,
    NTLMSSP_NEGOTIATE_NTLM,
    NTLMSSP_NEGOTIATE_OEM,
    NTLMSSP_NEGOTIATE_SEAL,
    NTLMSSP_NEGOTIATE_SIGN,
    NTLMSSP_NEGOTIATE_UNICODE,
    NTLMSSP_NEGOTIATE_VERSION,
    NTLMSSP_REQUEST_TARGET,
    AuthenticateMessage,
    AvFlags,
    AvId,
    AvPair,
    ChallengeMessage,
    NegotiateMessage,
    Version,
    pack_u32,
    unpack_filetime,
    unpack_u32,
)

__all__ = ["REQUESTED_FLAGS", "AuthSpec", "Built", "build", "negotiate_message"]

# What smbclient (and NtlmClient) ask for in the NEGOTIATE.
REQUESTED_FLAGS = (
    NTLMSSP_NEGOTIATE_UNICODE | NTLMSSP_REQUEST_TARGET | NTLMSSP_NEGOTIATE_SIGN | NTLMSSP_NEGOTIATE_SEAL
    | NTLMSSP_NEGOTIATE_NTLM | NTLMSSP_NEGOTIATE_ALWAYS_SIGN | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NTLMSSP_NEGOTIATE_VERSION | NTLMSSP_NEGOTIATE_128 | NTLMSSP_NEGOTIATE_KEY_EXCH | NTLMSSP_NEGOTIATE_56
)


def negotiate_message(flags: int = REQUESTED_FLAGS) -> bytes:
    return NegotiateMessage(flags, version=Version()).pack()


@dataclass
class AuthSpec:
    """One AUTHENTICATE as a client would choose it. `mic`: "valid", "zero", "flip" or "absent" (the MIC
    field left out, MsvAvFlags unchanged); `nt_length`/`lm` cut or replace the responses after computing."""

    user: str
    password: str
    domain: str
    workstation: str = "WS1"
    flags: int = 0
    av_pairs: list[AvPair] = field(default_factory=list)
    client_challenge: bytes = b"\x5a" * 8
    exported_key: bytes = b"\x3c" * 16
    blob_trailer: bytes = b"\x00" * 4
    nt_length: int | None = None
    lm: bytes | None = None
    session_key_length: int = 16
    mic: str = "valid"
    version: bool = True
    wrong_password: bool = False


@dataclass(frozen=True)
class Built:
    """The AUTHENTICATE bytes and what the client's SPNEGO layer needs afterwards."""

    message: bytes
    flags: int
    exported_key: bytes

    def security(self) -> SessionSecurity:
        """The client's NTLM session security, for the mechListMIC (MS-SPNG 3.3.5.1)."""
        return SessionSecurity(self.flags, self.exported_key, client=True)


def spec_for(challenge: ChallengeMessage, user: str, password: str, domain: str) -> AuthSpec:
    """The AUTHENTICATE our client and smbclient send: NTLMv2, MsvAvFlags MIC_PRESENT, zero channel
    bindings, a MIC."""
    flags = REQUESTED_FLAGS & challenge.flags
    unicode = challenge.flags & NTLMSSP_NEGOTIATE_UNICODE
    flags |= NTLMSSP_NEGOTIATE_UNICODE if unicode else NTLMSSP_NEGOTIATE_OEM
    pairs = [p for p in challenge.target_info or () if p.id not in (AvId.MsvAvFlags,)]
    pairs.append(AvPair(AvId.MsvAvFlags, pack_u32(AvFlags.MIC_PRESENT)))
    pairs.append(AvPair(AvId.MsvAvChannelBindings, bytes(16)))
    return AuthSpec(user, password, domain, flags=flags, av_pairs=pairs)


def build(spec: AuthSpec, negotiate: bytes, challenge_bytes: bytes) -> Built:
    challenge = ChallengeMessage.unpack(challenge_bytes)
    stamp = next((p.value for p in challenge.target_info or () if p.id == AvId.MsvAvTimestamp), None)
    timestamp = unpack_filetime(stamp) if stamp is not None and len(stamp) == 8 else 0
    temp = crypto.ntlmv2_temp(timestamp, spec.client_challenge, AvPair.pack_all(spec.av_pairs),
                              spec.blob_trailer)
    password = spec.password + ("x" if spec.wrong_password else "")
    key = crypto.ntowfv2(crypto.ntowfv1(password), spec.user, spec.domain)
    nt, _lm, session_base_key = crypto.compute_response_v2(key, challenge.server_challenge,
                                                            spec.client_challenge, temp)
    if spec.nt_length is not None:
        nt = nt[: spec.nt_length]
    lm = b"\x00" * 24 if spec.lm is None else spec.lm
    flags = spec.flags
    if flags & NTLMSSP_NEGOTIATE_KEY_EXCH:
        encrypted = crypto.rc4k(session_base_key, spec.exported_key)[: spec.session_key_length]
        exported = spec.exported_key
    else:
        encrypted = b""
        exported = session_base_key
    with_mic = spec.mic != "absent" and spec.version
    message = AuthenticateMessage(
        flags, lm, nt, spec.domain, spec.user, spec.workstation, encrypted,
        Version() if spec.version else None, bytes(16) if with_mic else None,
    ).pack()
    if with_mic and spec.mic != "zero":
        mic = crypto.mic(exported, negotiate, challenge_bytes, message)
        if spec.mic == "flip":
            mic = bytes((mic[0] ^ 1,)) + mic[1:]
        message = message[:72] + mic + message[88:]
    return Built(message, flags, exported)


def mic_present(spec: AuthSpec) -> bool:
    """Whether the spec's MsvAvFlags promise a MIC (MS-NLMP 2.2.2.1)."""
    for pair in spec.av_pairs:
        if pair.id == AvId.MsvAvFlags and len(pair.value) == 4:
            return bool(unpack_u32(pair.value, "MsvAvFlags") & AvFlags.MIC_PRESENT)
    return False
