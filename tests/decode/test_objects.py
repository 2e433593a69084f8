"""The decoder renders the codecs' own objects: what it shows where the codec and the DER layout decide,
that it raises nothing but DecodeError, and that `smb2auth decode` does not import the servers.

tests/test_decode.py covers the trees of the captured fixtures and every input form."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from smb2auth.decode import DecodeError, Node, decode_bytes, decode_input, render_json, render_text
from smb2auth.ntlm.messages import (
    SIGNATURE,
    AuthenticateMessage,
    AvId,
    AvPair,
    NegotiateFlags,
    NegotiateMessage,
    NtlmV2ClientChallenge,
    Version,
)
from smb2auth.spnego.asn1 import NTLMSSP
from smb2auth.spnego.tokens import NegState, NegTokenResp

ROOT = Path(__file__).resolve().parents[2]
SPNEGO = ROOT / "fixtures" / "spnego"
CHALLENGE_TOKEN = bytes.fromhex((SPNEGO / "smbd_session_setup1_accept_incomplete.hex").read_text().strip())
UNICODE = NegotiateFlags.NTLMSSP_NEGOTIATE_UNICODE


def _find(tree: Node, name: str) -> Node:
    node = tree.find(name)
    assert node is not None, name
    return node


# --- what the codec decides ------------------------------------------------------------------------------


def test_spnego_in_ber_is_decoded_without_offsets_inside() -> None:
    # X.690 8.1.3.5: a long-form length where the short form would do is BER, not the DER the codec writes.
    der = NegTokenResp(NegState.ACCEPT_INCOMPLETE, NTLMSSP, CHALLENGE_TOKEN[31:]).encode()
    assert der == CHALLENGE_TOKEN and der[1] == 0x81  # a1 81 LEN: one length octet
    ber = b"\xa1\x84" + bytes(3) + der[2:]
    tree = decode_bytes(ber)
    assert tree.name == "SPNEGO NegTokenResp" and "offsets inside are not shown" in (tree.note or "")
    assert _find(tree, "negState").value == "1 (accept-incomplete)"
    challenge = _find(tree, "NTLMSSP CHALLENGE")
    assert _find(challenge, "TargetName").value == "'PEERSMBD'"
    assert [n.offset for n in tree.walk()] == [None] * len(list(tree.walk()))


def test_ntlmssp_in_gss_framing() -> None:
    # RFC 2743 3.1: an InitialContextToken names its mechanism; NTLMSSP's inner token is the bare message.
    ntlm = NegotiateMessage(UNICODE, version=Version()).pack()
    oid = bytes.fromhex("060a2b0601040182370202 0a".replace(" ", ""))
    token = b"\x60" + bytes((len(oid) + len(ntlm),)) + oid + ntlm
    tree = decode_bytes(token)
    assert tree.name == "GSS-API InitialContextToken"
    assert _find(tree, "thisMech").value == f"NTLMSSP ({NTLMSSP})"
    assert _find(tree, "NTLMSSP NEGOTIATE").offset == 2 + len(oid)


def _authenticate(nt: bytes, lm: bytes = b"", flags: int = UNICODE, user: str = "bob") -> bytes:
    return AuthenticateMessage(flags, lm, nt, "DOM", user, "WS").pack()


def test_ntlmv2_blob_the_codec_refuses_is_shown_raw_with_its_reason() -> None:
    blob = NtlmV2ClientChallenge(0, b"c" * 8, (AvPair(AvId.MsvAvNbDomainName, b"D\x00"),)).pack()
    broken = b"p" * 16 + blob[:-8]  # the MsvAvEOL is cut off
    data = _authenticate(broken)
    tree = decode_bytes(data)
    nt = _find(tree, "NtChallengeResponse")
    assert _find(tree, "ResponseKind").value == "NTLMv2"
    assert nt.value == broken.hex() and nt.offset is not None
    assert nt.note == (
        "not an NTLMv2_RESPONSE: AV_PAIR list does not end with MsvAvEOL"
        f" at offset {nt.offset + 16 + NtlmV2ClientChallenge.HEADER_SIZE + 6}"
    )


def test_response_kind_is_the_servers_decision() -> None:
    # MS-NLMP 3.3.1: with ESS the server takes LmChallengeResponse[:8] as the client challenge.
    ess = UNICODE | NegotiateFlags.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    tree = decode_bytes(_authenticate(b"n" * 24, b"l" * 24, ess))
    kind = _find(tree, "ResponseKind")
    assert kind.value == "NTLMv1 with client challenge"
    assert kind.note == "ESS flag set, but the LM response is not client challenge + zeros"
    # MS-NLMP 3.2.5.1.2: anonymous has an empty UserName too.
    named = _find(decode_bytes(_authenticate(b"")), "ResponseKind")
    assert named.value == "unknown"
    assert named.note == "empty NtChallengeResponse, but UserName is 'bob': not anonymous"


def test_malformed_strings_and_names() -> None:
    data = bytearray(_authenticate(b"n" * 24))
    user_at = int.from_bytes(data[40:44], "little")
    data[36:38] = data[38:40] = (5).to_bytes(2, "little")
    try:
        decode_bytes(bytes(data))
    except DecodeError as exc:
        assert str(exc) == f"malformed NTLMSSP AUTHENTICATE at offset {user_at}: odd-length UTF-16 UserName"
    else:
        raise AssertionError("an odd-length UTF-16 UserName decoded")
    data[36:38] = data[38:40] = (6).to_bytes(2, "little")
    data[user_at : user_at + 2] = b"\x00\xd8"  # a high surrogate alone
    user = _find(decode_bytes(bytes(data)), "UserName")
    assert (user.value, user.note) == ("'\\ud800ob'", "Unicode, unpaired surrogate")


def test_spnego_errors_come_from_the_codec() -> None:
    try:
        decode_bytes(bytes.fromhex("a1073005a0030a0107"))
    except DecodeError as exc:
        # RFC 4178 4.2.2: negState 7 is not defined; the codec gives no offset, so it is the token's.
        reason = "SPNEGO negState 7 is not defined (RFC 4178 4.2.2)"
        assert str(exc) == f"malformed SPNEGO token at offset 0: {reason}"
    else:
        raise AssertionError("negState 7 decoded")


# --- only DecodeError -------------------------------------------------------------------------------------

_PREFIXES = [
    b"",
    SIGNATURE + b"\x01\x00\x00\x00",
    SIGNATURE + b"\x02\x00\x00\x00",
    SIGNATURE + b"\x03\x00\x00\x00",
    b"\x60",
    b"\xa0",
    b"\xa1",
    b"\xfeSMB",
    b"\xffSMB",
    b"\xfdSMB",
    b"\xfcSMB",
    b"\x00\x00\x00\x40\xfeSMB",
]


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(_PREFIXES), st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_raise_only_decode_error(prefix: bytes, rest: bytes, as_text: bool) -> None:
    data = prefix + rest
    try:
        tree = decode_input(data.hex().encode()) if as_text else decode_bytes(data)
    except DecodeError as exc:
        assert str(exc).startswith("malformed ") and "\n" not in str(exc)
        return
    render_text(tree)
    json.loads(render_json(tree))


# --- the command starts without the servers --------------------------------------------------------------


def test_decode_command_imports_no_server() -> None:
    script = f"""
import sys
from smb2auth.commands.main import main
code = main(["decode", "@{SPNEGO / 'smbclient_session_setup2_authenticate.hex'}"])
heavy = ("asyncio", "http.server", "wsgiref", "smb2auth.server", "smb2auth.http", "smb2auth.client")
loaded = sorted(m for m in sys.modules if m in heavy or m.startswith(tuple(h + "." for h in heavy)))
print(code, loaded, "smb2auth.commands.decode" in sys.modules, file=sys.stderr)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.stderr == "0 [] True\n"
    assert "NTLMSSP AUTHENTICATE" in proc.stdout
