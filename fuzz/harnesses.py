"""One harness function per parser and one for the server's connection handler.

Each harness takes arbitrary bytes and returns nothing. It raises `Finding` (an AssertionError) when the code
under test broke its contract; any other exception escaping a harness is a finding too. Contracts:

* parsers raise nothing but `MalformedMessage`, and what they return packs again without raising;
* the sans-IO server `Connection` never raises: it answers with well-formed SMB2 response frames, or sends
  nothing (CANCEL) and/or closes; after `close()` no pending handshake or session is left behind, and the
  frame reader never holds more than one maximum-size frame.

Used by fuzz/run.py (atheris, or a plain mutator) and tests/hardening/test_fuzz_smoke.py.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from smb2auth.decode import decode_bytes, decode_input, render_json, render_text
from smb2auth.errors import MalformedMessage
from smb2auth.ntlm.messages import (
    AuthenticateMessage,
    AvPair,
    ChallengeMessage,
    LmV2Response,
    NegotiateMessage,
    NtlmV2Response,
)
from smb2auth.smb2.body import parse_message
from smb2auth.smb2.crypto import TransformHeader, decrypt, encrypt
from smb2auth.smb2.header import HEADER_SIZE, HeaderFlags, Smb1Header, Smb2Header, split_compound
from smb2auth.smb2.negotiate import NegotiateRequest, NegotiateResponse, Smb1NegotiateRequest
from smb2auth.smb2.negotiate_contexts import Cipher
from smb2auth.smb2.session import LogoffRequest, LogoffResponse, SessionSetupRequest, SessionSetupResponse
from smb2auth.smb2.simple import EchoRequest, EchoResponse, ErrorResponse
from smb2auth.smb2.tree import (
    TreeConnectRequest,
    TreeConnectResponse,
    TreeDisconnectRequest,
    TreeDisconnectResponse,
)
from smb2auth.spnego import tokens

if TYPE_CHECKING:
    from smb2auth.server.context import ServerContext

__all__ = ["TARGETS", "Finding", "ServerScript", "server_script"]


class Finding(AssertionError):
    """A harness's contract was broken."""


def _parse(fn: Callable[[bytes], object], data: bytes) -> object | None:
    """`fn(data)`, None on MalformedMessage; the result must pack again (when it has pack)."""
    try:
        value = fn(data)
    except MalformedMessage:
        return None
    pack = getattr(value, "pack", None)
    if pack is not None:
        pack()
    return value


# -- NTLM ---------------------------------------------------------------------------------------------


def ntlm_negotiate(data: bytes) -> None:
    _parse(NegotiateMessage.unpack, data)


def ntlm_challenge(data: bytes) -> None:
    _parse(ChallengeMessage.unpack, data)
    _parse(AvPair.unpack_all, data)


def ntlm_authenticate(data: bytes) -> None:
    _parse(AuthenticateMessage.unpack, data)
    _parse(NtlmV2Response.unpack, data)
    _parse(LmV2Response.unpack, data)


# -- SPNEGO -------------------------------------------------------------------------------------------


def spnego(data: bytes) -> None:
    """decode; what decodes encodes (DER) and decodes back to the same token."""
    token = _parse(tokens.decode, data)
    if isinstance(token, tokens.NegTokenInit | tokens.NegTokenResp):
        again = tokens.decode(token.encode())
        if again != token:
            raise Finding(f"SPNEGO round trip changed the token: {token!r} -> {again!r}")


# -- SMB2 ---------------------------------------------------------------------------------------------

_BODIES: tuple[Callable[[bytes], object], ...] = (
    NegotiateRequest.unpack,
    NegotiateResponse.unpack,
    SessionSetupRequest.unpack,
    SessionSetupResponse.unpack,
    LogoffRequest.unpack,
    LogoffResponse.unpack,
    TreeConnectRequest.unpack,
    TreeConnectResponse.unpack,
    TreeDisconnectRequest.unpack,
    TreeDisconnectResponse.unpack,
    EchoRequest.unpack,
    EchoResponse.unpack,
    ErrorResponse.unpack,
    Smb1NegotiateRequest.unpack,
    Smb1Header.unpack,
    Smb2Header.unpack,
    TransformHeader.unpack,
    split_compound,
)


def smb2_message(data: bytes) -> None:
    """parse_message on the whole input; the first byte also picks one body/header parser for the rest."""
    _parse(parse_message, data)
    if data:
        _parse(_BODIES[data[0] % len(_BODIES)], data[1:])
        if len(data) > HEADER_SIZE:
            _parse(_BODIES[data[0] % len(_BODIES)], data[HEADER_SIZE:])


# -- decode -------------------------------------------------------------------------------------------


def decode(data: bytes) -> None:
    """decode_bytes (odd first byte: decode_input, the text forms), and both renderings of what it gave."""
    fn = decode_input if data[:1] and data[0] & 1 else decode_bytes
    try:
        node = fn(data)
    except MalformedMessage:
        return
    render_text(node)
    render_json(node)


# -- server connection handler ------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerScript:
    """A recorded valid client conversation, replayed into a fresh Connection before the fuzz input:
    `negotiate` (one frame payload), `setup1` (SESSION_SETUP with the NTLM NEGOTIATE), `setup2` (with the
    AUTHENTICATE), the session id the server assigns, and, when encryption was negotiated (AES-128-GCM), the
    session's client->server and server->client keys."""

    negotiate: bytes
    setup1: bytes
    setup2: bytes
    session_id: int
    c2s_key: bytes = b""
    s2c_key: bytes = b""


_FIXED_TIME = 1_700_000_000.0
USER, PASSWORD, DOMAIN = "alice", "Passw0rd!", "TESTGRP"


def _counter_rng() -> Callable[[int], bytes]:
    state = [0]

    def rng(n: int) -> bytes:
        state[0] += 1
        return state[0].to_bytes(8, "little")[:n].ljust(n, b"\x5a")

    return rng


def new_context() -> ServerContext:
    """A fresh, deterministic ServerContext (same rng sequence, fixed clock): replayed scripts stay valid."""
    from smb2auth.authority.local import LocalAuthority
    from smb2auth.ntlm.server import TargetInfo
    from smb2auth.server.config import ServerConfig
    from smb2auth.server.context import ServerContext

    authority = LocalAuthority(DOMAIN)
    authority.add_user(USER, PASSWORD)
    config = ServerConfig(
        authority=authority,
        target=TargetInfo(nb_domain=DOMAIN, nb_computer="FUZZ"),
        shares=("data",),
        signing_required=False,
        server_guid=b"S" * 16,
        max_message_size=64 * 1024,
    )
    return ServerContext(config, rng=_counter_rng(), clock=lambda: _FIXED_TIME, monotonic=lambda: 0.0)


@cache
def server_script(encrypted: bool = False) -> ServerScript:
    """Record NEGOTIATE (3.1.1, signing optional; AES-128-GCM offered if `encrypted`) and both SESSION_SETUP
    legs of a valid login."""
    from smb2auth.ntlm.client import NtlmClient
    from smb2auth.server.connection import Connection
    from smb2auth.server.inline import answer_frame
    from smb2auth.smb2.header import Command
    from smb2auth.smb2.negotiate import Capabilities, SecurityMode
    from smb2auth.smb2.negotiate_contexts import (
        Cipher,
        EncryptionCapabilities,
        HashAlgorithm,
        PreauthIntegrityCapabilities,
        SigningAlgorithm,
        SigningCapabilities,
    )
    from smb2auth.spnego.context import SpnegoClient

    ctx = new_context()
    conn = Connection(ctx, "fuzz")

    def message(command: Command, mid: int, body: bytes, session_id: int = 0) -> bytes:
        header = Smb2Header(command, HeaderFlags(0), mid, session_id, 0, credit=64, credit_charge=1)
        return header.pack() + body

    contexts: tuple[object, ...] = (
        PreauthIntegrityCapabilities((HashAlgorithm.SHA_512,), b"\x11" * 32),
        SigningCapabilities((SigningAlgorithm.AES_CMAC,)),
    )
    if encrypted:
        contexts += (EncryptionCapabilities((Cipher.AES_128_GCM,)),)
    negotiate = message(
        Command.NEGOTIATE, 0,
        NegotiateRequest((0x0311, 0x0302, 0x0300, 0x0210, 0x0202), SecurityMode.SIGNING_ENABLED,
                         Capabilities.ENCRYPTION if encrypted else Capabilities(0), client_guid=b"C" * 16,
                         negotiate_contexts=contexts).pack(),  # type: ignore[arg-type]
    )
    answer_frame(conn, negotiate)
    spnego_client = SpnegoClient(
        NtlmClient(USER, PASSWORD, domain=DOMAIN, workstation="WS", rng=_counter_rng(),
                   clock=lambda: _FIXED_TIME)
    )
    setup1 = message(Command.SESSION_SETUP, 1, SessionSetupRequest(spnego_client.step(None) or b"").pack())
    (out,) = answer_frame(conn, setup1)
    parts = split_compound(out[4:])
    session_id = parts[0].header.session_id
    token = spnego_client.step(SessionSetupResponse.unpack(parts[0].body).security_buffer) or b""
    setup2 = message(Command.SESSION_SETUP, 2, SessionSetupRequest(token).pack(), session_id)
    (out,) = answer_frame(conn, setup2)
    if split_compound(out[4:])[0].header.status != 0:
        raise RuntimeError("the recorded login failed")
    session = conn.sessions[session_id]
    if encrypted and not session.decryption_key:
        raise RuntimeError("the recorded login did not negotiate encryption")
    return ServerScript(negotiate, setup1, setup2, session_id, session.decryption_key, session.encryption_key)


_RESPONSE_HEADER = struct.Struct("<4sH2xIH2xII")  # ProtocolId, StructureSize, Status, Command, Flags, Next


def _check_output(frames: list[bytes], s2c_key: bytes = b"") -> None:
    """Each frame: a Direct TCP frame holding SMB2 responses (unknown commands echoed, as Samba does);
    encrypted ones must decrypt with the session's server->client key. Or, to a session request, an RFC 1002
    4.3.3/4.3.4 session response."""
    for out in frames:
        if out in (b"\x82\x00\x00\x00", b"\x83\x00\x00\x01\x82"):
            continue
        if len(out) < 4 or out[0] != 0 or int.from_bytes(out[1:4], "big") != len(out) - 4:
            raise Finding(f"bad Direct TCP frame from the server: {out[:8].hex()}")
        payload = out[4:]
        if payload[:4] == b"\xfdSMB":
            if not s2c_key:
                raise Finding("an encrypted response on a connection without encryption")
            try:
                payload = decrypt(payload, s2c_key, Cipher.AES_128_GCM)[1]
            except MalformedMessage as exc:
                raise Finding(f"the server's encrypted response does not decrypt: {exc}") from exc
        at = 0
        while True:
            if len(payload) - at < HEADER_SIZE:
                raise Finding(f"truncated response header at {at}")
            magic, size, _, _, flags, next_command = _RESPONSE_HEADER.unpack_from(payload, at)
            if magic != b"\xfeSMB" or size != HEADER_SIZE or not flags & HeaderFlags.SERVER_TO_REDIR:
                raise Finding(f"malformed response header at {at}: {payload[at : at + 16].hex()}")
            if not next_command:
                break
            if next_command % 8 or next_command < HEADER_SIZE:
                raise Finding(f"bad NextCommand {next_command} at {at}")
            at += next_command


_MID = struct.Struct("<Q")


def server(data: bytes) -> None:
    """The first byte picks how far a valid conversation is replayed first and how the rest is fed:
    bits 1-2: 0 nothing, 1 NEGOTIATE, 2 NEGOTIATE + first SESSION_SETUP, 3 a complete login;
    bit 0: the rest is one frame payload (else a Direct TCP byte stream, fed in two pieces);
    bit 3: (payload) overwrite its MessageId with the next valid one (and, encrypted, its SessionId);
    bit 4 with prefix 2: the rest is the second SESSION_SETUP's security buffer (the AUTHENTICATE leg);
    bit 5 with prefix 3 and bit 0: encryption negotiated, the payload goes sealed with the session's key."""
    from smb2auth.server.connection import Connection
    from smb2auth.server.inline import answer_frame

    if not data:
        return
    mode, rest = data[0], data[1:]
    prefix = (mode >> 1) & 3
    sealed = prefix == 3 and bool(mode & 0x20) and bool(mode & 1)
    script = server_script(sealed)
    ctx = new_context()
    conn = Connection(ctx, "fuzz")
    for step in (script.negotiate, script.setup1, script.setup2)[:prefix]:
        answer_frame(conn, step)
    next_mid = prefix
    if prefix == 2 and mode & 0x10:
        rest = script.setup2[:HEADER_SIZE] + SessionSetupRequest(rest).pack()
    elif mode & 1 and mode & 8 and len(rest) >= HEADER_SIZE:
        rest = rest[:24] + _MID.pack(next_mid) + rest[32:]
        if sealed:
            rest = rest[:40] + _MID.pack(script.session_id) + rest[48:]
    if sealed:
        rest = encrypt(rest, script.c2s_key, Cipher.AES_128_GCM, script.session_id, b"\x07" * 12)
    if mode & 1 or (prefix == 2 and mode & 0x10):
        _check_output(answer_frame(conn, rest), script.s2c_key)
    else:
        cut = rest[0] % (len(rest) + 1) if rest else 0
        for piece in (rest[:cut], rest[cut:]):
            for payload in conn.feed(piece):
                _check_output(answer_frame(conn, payload))
                if conn.closed:
                    break
            if conn.framer.pending > ctx.config.max_message_size + 4:
                raise Finding(f"frame reader holds {conn.framer.pending} bytes")
    in_progress = sum(1 for session in conn.sessions.values() if session.handshake is not None)
    if ctx.pending_handshakes != in_progress:
        raise Finding(f"pending handshakes {ctx.pending_handshakes}, {in_progress} sessions in progress")
    conn.close("fuzz done")
    if ctx.pending_handshakes != 0 or ctx.sessions or conn.sessions:
        raise Finding("close() left handshakes or sessions behind")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "ntlm_negotiate": ntlm_negotiate,
    "ntlm_challenge": ntlm_challenge,
    "ntlm_authenticate": ntlm_authenticate,
    "spnego": spnego,
    "smb2_message": smb2_message,
    "decode": decode,
    "server": server,
}
