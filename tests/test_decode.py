"""`smb2auth decode`: the annotated tree of captured SMB2 frames and SPNEGO tokens, NTLM messages from our own
client, every input form, --json, malformed input (exit 2, one line, an offset) and fuzzing."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smb2auth.authority.local import LocalAuthority
from smb2auth.commands.main import main
from smb2auth.decode import DecodeError, Node, decode_bytes, decode_input, render_json, render_text
from smb2auth.ntlm import NtlmClient, NtlmPolicy, NtlmServer, TargetInfo
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.smb2.framing import frame
from smb2auth.smb2.header import join_compound

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SMB2_FRAMES = sorted(FIXTURES.glob("smb2/*/*.hex"))
SPNEGO = FIXTURES / "spnego"
REF = FIXTURES / "smb2" / "reference_smb311"


def _hex(path: Path) -> bytes:
    return bytes.fromhex(path.read_text().strip())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["decode", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def names(tree: Node) -> set[str]:
    return {n.name for n in tree.walk()}


def values(tree: Node) -> set[str]:
    return {n.value for n in tree.walk() if n.value is not None}


# --- captured SMB2 frames (fixtures/smb2, smbclient <-> smbd, see its README) ----------------------------


@pytest.mark.parametrize("path", SMB2_FRAMES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_smb2_fixture_frame_decodes(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, f"@{path}")
    assert code == 0 and err == ""
    first = out.splitlines()[0]
    if "TRANSFORM" in path.stem:
        assert "SMB2 TRANSFORM_HEADER" in first
    elif "SMB1_NEGOTIATE" in path.stem:
        assert "SMB1 NEGOTIATE request" in first
    else:
        stem = path.stem.split("_", 2)[2]  # e.g. SESSION_SETUP_REQUEST
        command, _, kind_word = stem.rpartition("_")
        assert f"SMB2 {command} {kind_word.lower()}" in first


def test_negotiate_request_dialects_and_contexts() -> None:
    tree = decode_bytes(_hex(FIXTURES / "smb2/smb311/00_c2s_NEGOTIATE_REQUEST.hex"))
    assert tree.name == "SMB2 NEGOTIATE request"
    dialects = tree.find("Dialects")
    assert dialects is not None
    assert [d.value for d in dialects.children] == [
        "0x0202 (2.0.2)",
        "0x0210 (2.1)",
        "0x0300 (3.0)",
        "0x0302 (3.0.2)",
        "0x0311 (3.1.1)",
    ]
    found = names(tree)
    for name in (
        "PREAUTH_INTEGRITY_CAPABILITIES",
        "ENCRYPTION_CAPABILITIES",
        "SIGNING_CAPABILITIES",
        "NETNAME_NEGOTIATE_CONTEXT_ID",
        "Salt",
        "SIGNING_ENABLED",
        "ENCRYPTION",
        "LEASING",
    ):
        assert name in found
    vals = values(tree)
    assert {"0x0001 (SHA_512)", "0x0002 (AES_128_GCM)", "0x0002 (AES_GMAC)", "'127.0.0.1'"} <= vals
    header = tree.find("SMB2 header")
    assert header is not None and header.find("Command") is not None
    assert header.find("Command").value == "0x0000 (NEGOTIATE)"  # type: ignore[union-attr]
    assert header.find("CreditRequest").value == "31"  # type: ignore[union-attr]


def test_negotiate_response_nests_negtokeninit2() -> None:
    tree = decode_bytes(_hex(REF / "01_s2c_NEGOTIATE_RESPONSE.hex"))
    assert tree.name == "SMB2 NEGOTIATE response"
    assert tree.find("DialectRevision").value == "0x0311 (3.1.1)"  # type: ignore[union-attr]
    assert tree.find("Status").value == "0x00000000 (STATUS_SUCCESS)"  # type: ignore[union-attr]
    buffer = tree.find("SecurityBuffer")
    assert buffer is not None
    assert buffer.find("SPNEGO NegTokenInit2") is not None
    assert buffer.find("hintName").value == "'not_defined_in_RFC4178@please_ignore'"  # type: ignore[union-attr]
    assert "NTLMSSP (1.3.6.1.4.1.311.2.2.10)" in values(buffer)
    assert "SERVER_TO_REDIR" in names(tree)


def test_session_setup_request_nests_authenticate_with_ntlmv2_blob() -> None:
    tree = decode_bytes(_hex(REF / "04_c2s_SESSION_SETUP_REQUEST.hex"))
    auth = tree.find("NTLMSSP AUTHENTICATE")
    assert auth is not None
    assert auth.find("ResponseKind").value == "NTLMv2"  # type: ignore[union-attr]
    # tshark -r fixtures/smb2/pcap/reference_smb311.pcapng -d tcp.port==4445,nbss -Y ntlmssp.messagetype==3
    #   -T fields -e ntlmssp.ntlmv2_response.timestamp -e ntlmssp.ntlmv2_response.ntproofstr
    #   -> "Nov 22, 2026 13:42:33.938182000 UTC  4b76a686b19f880ea707afb68fecebec"
    assert auth.find("NTProofStr").value == "4b76a686b19f880ea707afb68fecebec"  # type: ignore[union-attr]
    blob = auth.find("NTLMv2_CLIENT_CHALLENGE")
    assert blob is not None
    assert blob.find("TimeStamp").value == "2026-11-22 13:42:33.938182 UTC"  # type: ignore[union-attr]
    for name in ("MsvAvNbDomainName", "MsvAvTimestamp", "MsvAvFlags", "MsvAvSingleHost", "MsvAvTargetName"):
        assert blob.find(name) is not None
    assert blob.find("MsvAvFlags").children[0].name == "MIC_PRESENT"  # type: ignore[union-attr]
    assert blob.find("MsvAvTargetName").value == "'cifs/127.0.0.1'"  # type: ignore[union-attr]
    assert blob.find("MsvAvChannelBindings").note == "all zero: no channel binding"  # type: ignore[union-attr]
    assert auth.find("UserName").value == "'alice'"  # type: ignore[union-attr]
    assert auth.find("UserName").note == "Unicode"  # type: ignore[union-attr]
    assert auth.find("Version").value == "6.1 build 0, NTLM revision 15"  # type: ignore[union-attr]
    assert auth.find("MIC") is not None and auth.find("MIC").offset is not None  # type: ignore[union-attr]
    assert "NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY" in names(auth)


def test_nested_offsets_point_at_the_bytes() -> None:
    data = _hex(REF / "04_c2s_SESSION_SETUP_REQUEST.hex")
    tree = decode_bytes(data)
    auth = tree.find("NTLMSSP AUTHENTICATE")
    assert auth is not None and auth.offset is not None
    assert data[auth.offset : auth.offset + 8] == b"NTLMSSP\x00"
    proof = auth.find("NTProofStr")
    assert proof is not None and proof.offset is not None
    assert data[proof.offset : proof.offset + 16].hex() == proof.value


def test_session_setup_response_challenge() -> None:
    tree = decode_bytes(_hex(REF / "03_s2c_SESSION_SETUP_RESPONSE.hex"))
    assert tree.note == "STATUS_MORE_PROCESSING_REQUIRED"
    assert tree.find("negState").value == "1 (accept-incomplete)"  # type: ignore[union-attr]
    challenge = tree.find("NTLMSSP CHALLENGE")
    assert challenge is not None
    found = names(challenge)
    assert {"MsvAvNbComputerName", "MsvAvDnsComputerName", "MsvAvTimestamp", "MsvAvEOL"} <= found
    assert {"NTLMSSP_NEGOTIATE_TARGET_INFO", "NTLMSSP_TARGET_TYPE_SERVER"} <= found
    assert challenge.find("TargetName").value == "'PEERSMBD'"  # type: ignore[union-attr]


def test_final_session_setup_response_is_signed_and_accept_completed() -> None:
    tree = decode_bytes(_hex(REF / "05_s2c_SESSION_SETUP_RESPONSE.hex"))
    assert tree.note == "STATUS_SUCCESS"
    assert "SIGNED" in names(tree.find("Flags"))  # type: ignore[arg-type]
    assert tree.find("Signature").note is None  # type: ignore[union-attr]
    assert tree.find("negState").value == "0 (accept-completed)"  # type: ignore[union-attr]


def test_smb1_multi_protocol_negotiate() -> None:
    tree = decode_bytes(_hex(FIXTURES / "smb2/smb1neg/00_c2s_SMB1_NEGOTIATE.hex"))
    assert tree.name == "SMB1 NEGOTIATE request"
    assert {"'SMB 2.002'", "'SMB 2.???'", "'NT LM 0.12'"} <= values(tree)
    assert "EXTENDED_SECURITY" in names(tree)
    answer = decode_bytes(_hex(FIXTURES / "smb2/smb1neg/01_s2c_NEGOTIATE_RESPONSE.hex"))
    assert answer.find("DialectRevision").value == "0x02ff (2.??? (wildcard))"  # type: ignore[union-attr]


def test_transform_header_shown_not_decrypted() -> None:
    tree = decode_bytes(_hex(FIXTURES / "smb2/smb311_encrypt/06_c2s_TRANSFORM.hex"))
    assert tree.name == "SMB2 TRANSFORM_HEADER"
    assert {"Nonce", "OriginalMessageSize", "SessionId", "EncryptedMessage"} <= names(tree)
    assert "not decrypted" in (tree.find("EncryptedMessage").note or "")  # type: ignore[union-attr]


def test_direct_tcp_framing_and_compound() -> None:
    first = _hex(REF / "10_c2s_TREE_DISCONNECT_REQUEST.hex")
    second = _hex(REF / "12_c2s_TREE_CONNECT_REQUEST.hex")
    compound = join_compound([first, second])
    tree = decode_bytes(frame(compound))
    assert tree.name == "Direct TCP frame"
    assert tree.find("StreamProtocolLength").value == str(len(compound))  # type: ignore[union-attr]
    comp = tree.find("SMB2 compound")
    assert comp is not None
    assert [c.name for c in comp.children] == ["SMB2 TREE_DISCONNECT request", "SMB2 TREE_CONNECT request"]
    assert comp.children[1].offset == 4 + len(first) + (-len(first) % 8)
    two = decode_bytes(frame(first) + frame(second))
    assert two.name == "Direct TCP stream" and len(two.children) == 2


def test_tree_connect_path() -> None:
    tree = decode_bytes(_hex(REF / "06_c2s_TREE_CONNECT_REQUEST.hex"))
    path = tree.find("Path")
    assert path is not None and path.value is not None and path.value.startswith("'\\\\")


# --- captured SPNEGO tokens (fixtures/spnego, see its README) ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "root", "expected"),
    [
        ("smbd_negotiate_negtokeninit2", "GSS-API InitialContextToken", {"SPNEGO NegTokenInit2", "negHints"}),
        ("smbclient_session_setup1_negtokeninit", "GSS-API InitialContextToken", {"NTLMSSP NEGOTIATE"}),
        (
            "smbd_session_setup1_accept_incomplete",
            "SPNEGO NegTokenResp",
            {"NTLMSSP CHALLENGE", "supportedMech"},
        ),
        (
            "smbclient_session_setup2_authenticate",
            "SPNEGO NegTokenResp",
            {"NTLMSSP AUTHENTICATE", "mechListMIC"},
        ),
        ("smbd_session_setup2_accept_completed", "SPNEGO NegTokenResp", {"negState", "mechListMIC"}),
    ],
)
def test_spnego_fixtures(
    name: str, root: str, expected: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = SPNEGO / f"{name}.hex"
    code, out, _ = run(capsys, f"@{path}")
    assert code == 0
    tree = decode_bytes(_hex(path))
    assert tree.name == root
    assert expected <= names(tree)
    assert tree.note is None or "rejects" not in tree.note
    assert root in out.splitlines()[0]


def test_spnego_mech_names_and_kerberos_inner_token() -> None:
    from smb2auth.spnego.asn1 import KRB5, MS_KRB5, NEGOEX, NTLMSSP
    from smb2auth.spnego.tokens import NegTokenInit

    # RFC 4121 4.1: a Kerberos initial token is framed with the KRB5 OID, then TOK_ID 01 00 (AP-REQ).
    krb5_oid = bytes.fromhex("06092a864886f712010202")
    krb = b"\x60" + bytes((len(krb5_oid) + 4,)) + krb5_oid + b"\x01\x00\x6e\x00"
    token = NegTokenInit((MS_KRB5, KRB5, NEGOEX, NTLMSSP), mech_token=krb).encode()
    tree = decode_bytes(token)
    mechs = [c.value for c in tree.find("mechTypes").children]  # type: ignore[union-attr]
    assert mechs == [
        "MS Kerberos 5 (1.2.840.48018.1.2.2)",
        "Kerberos 5 (1.2.840.113554.1.2.2)",
        "NegoEx (1.3.6.1.4.1.311.2.2.30)",
        "NTLMSSP (1.3.6.1.4.1.311.2.2.10)",
    ]
    inner = tree.find("innerContextToken")
    assert inner is not None and inner.note is not None and "KRB_AP_REQ" in inner.note
    assert tree.find("thisMech").value == "SPNEGO (1.3.6.1.5.5.2)"  # type: ignore[union-attr]
    # A mechToken that does not parse is shown raw, not fatal.
    broken = NegTokenInit((NTLMSSP,), mech_token=b"\x60\x7f\x06").encode()
    undecoded = decode_bytes(broken).find("(undecoded)")
    assert undecoded is not None and "does not parse" in (undecoded.note or "")


# --- NTLM messages from our own client (every response kind, Unicode and OEM) -----------------------------


def _handshake(kind: ResponseKind, oem: bool) -> tuple[bytes, bytes, bytes]:
    client = NtlmClient(
        "bob",
        "pw",
        domain="DOM",
        workstation="WS",
        version=kind,
        oem=oem,
        rng=lambda n: b"\x11" * n,
        clock=lambda: 1.7e9,
    )
    server = NtlmServer(
        LocalAuthority(),
        target=TargetInfo(nb_domain="TESTGRP", nb_computer="HARNESS"),
        policy=NtlmPolicy(allow_ntlmv1=True, allow_lm=True),
        rng=lambda n: b"\x22" * n,
        clock=lambda: 1.7e9,
    )
    negotiate = client.step(None)
    assert negotiate is not None
    challenge = server.step(negotiate)
    assert challenge is not None
    authenticate = client.step(challenge)
    assert authenticate is not None
    return negotiate, challenge, authenticate


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (ResponseKind.NTLMV2, "NTLMv2"),
        (ResponseKind.NTLMV1, "NTLMv1"),
        (ResponseKind.NTLMV1_ESS, "NTLMv1 with client challenge"),
        (ResponseKind.LM, "LM"),
        (ResponseKind.ANONYMOUS, "anonymous"),
    ],
)
@pytest.mark.parametrize("oem", [False, True])
def test_response_kinds(kind: ResponseKind, expected: str, oem: bool) -> None:
    _, challenge, authenticate = _handshake(kind, oem)
    tree = decode_bytes(authenticate)
    assert tree.find("ResponseKind").value == expected  # type: ignore[union-attr]
    if kind != ResponseKind.ANONYMOUS:
        user = tree.find("UserName")
        assert user is not None and user.value == "'bob'"
        assert user.note == ("OEM" if oem else "Unicode")
    if kind == ResponseKind.NTLMV1_ESS:
        assert tree.find("ClientChallenge").value == "11" * 8  # type: ignore[union-attr]
    if kind == ResponseKind.NTLMV2:
        # clock 1.7e9 s since 1970 -> 2023-11-14 22:13:20 UTC
        stamp = tree.find("TimeStamp")
        assert stamp is not None and stamp.value == "2023-11-14 22:13:20.000000 UTC"
    decoded = decode_bytes(challenge)
    assert decoded.find("MsvAvNbComputerName").value == "'HARNESS'"  # type: ignore[union-attr]
    assert decoded.find("ServerChallenge").value == "22" * 8  # type: ignore[union-attr]


def test_negotiate_message_version_and_flags() -> None:
    negotiate, _, _ = _handshake(ResponseKind.NTLMV2, False)
    tree = decode_bytes(negotiate)
    assert tree.name == "NTLMSSP NEGOTIATE"
    assert {"NTLMSSP_NEGOTIATE_UNICODE", "NTLMSSP_NEGOTIATE_VERSION", "NTLMSSP_REQUEST_TARGET"} <= names(tree)
    version = tree.find("Version")
    assert version is not None and version.value is not None and "build" in version.value


# --- input forms ---------------------------------------------------------------------------------------


AUTH_TOKEN = _hex(SPNEGO / "smbclient_session_setup2_authenticate.hex")
CHALLENGE_TOKEN = _hex(SPNEGO / "smbd_session_setup1_accept_incomplete.hex")


@pytest.mark.parametrize(
    "header",
    ["WWW-Authenticate", "Authorization", "Proxy-Authorization", "Proxy-Authenticate", "authorization"],
)
def test_header_lines(header: str, capsys: pytest.CaptureFixture[str]) -> None:
    b64 = base64.b64encode(AUTH_TOKEN).decode()
    code, out, err = run(capsys, f"{header}: Negotiate {b64}")
    assert code == 0, err
    assert "SPNEGO NegTokenResp" in out and "NTLMSSP AUTHENTICATE" in out
    tree = decode_input(f"{header}: Negotiate {b64}".encode())
    assert tree.name.lower() == header.lower()
    assert tree.children[0].name == "Negotiate"


def test_several_challenges_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    b64 = base64.b64encode(CHALLENGE_TOKEN).decode()
    line = f'WWW-Authenticate: Negotiate {b64}, NTLM, Basic realm="x", charset="UTF-8"'
    tree = decode_input(line.encode())
    assert [c.name for c in tree.children] == ["Negotiate", "NTLM", "Basic"]
    assert tree.children[1].note == "auth scheme, no token"
    assert tree.children[0].find("NTLMSSP CHALLENGE") is not None
    assert [c.name for c in tree.children[2].children] == ["params", "auth-param"]
    code, out, _ = run(capsys, *line.split(" "))
    assert code == 0 and "NTLMSSP CHALLENGE" in out


def test_bare_ntlm_over_http_and_scheme_without_header() -> None:
    ntlm = AUTH_TOKEN[16 : 16 + 384]
    tree = decode_input(f"Authorization: NTLM {base64.b64encode(ntlm).decode()}".encode())
    assert tree.find("NTLMSSP AUTHENTICATE") is not None
    bare = decode_input(f"NTLM {base64.b64encode(ntlm).decode()}".encode())
    assert bare.name == "NTLM" and bare.find("NTLMSSP AUTHENTICATE") is not None


@pytest.mark.parametrize(
    "text",
    [
        AUTH_TOKEN.hex(),
        AUTH_TOKEN.hex().upper(),
        " ".join(f"{b:02x}" for b in AUTH_TOKEN),
        ":".join(f"{b:02x}" for b in AUTH_TOKEN),
        ", ".join(f"0x{b:02x}" for b in AUTH_TOKEN),
        "\n".join(AUTH_TOKEN.hex()[i : i + 32] for i in range(0, len(AUTH_TOKEN.hex()), 32)),
        base64.b64encode(AUTH_TOKEN).decode(),
        base64.urlsafe_b64encode(AUTH_TOKEN).decode().rstrip("="),
    ],
    ids=["hex", "HEX", "spaces", "colons", "c-array", "lines", "base64", "base64url"],
)
def test_text_forms(text: str) -> None:
    assert render_json(decode_input(text.encode())) == render_json(decode_bytes(AUTH_TOKEN))


def _dump_xxd(data: bytes) -> str:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i : i + 16]
        groups = " ".join(chunk[j : j + 2].hex() for j in range(0, len(chunk), 2))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{i:08x}: {groups:<39}  {text}")
    return "\n".join(lines) + "\n"


def _dump_hexdump_c(data: bytes) -> str:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i : i + 16]
        left = " ".join(f"{b:02x}" for b in chunk[:8])
        right = " ".join(f"{b:02x}" for b in chunk[8:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{i:08x}  {left:<23}  {right:<23}  |{text}|")
    lines.append(f"{len(data):08x}")
    return "\n".join(lines) + "\n"


def _dump_wireshark(data: bytes) -> str:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i : i + 16]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{i:04x}   {hexpart:<47}   {text}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("dump", [_dump_xxd, _dump_hexdump_c, _dump_wireshark])
def test_hex_dumps(dump: object) -> None:
    # The ASCII column of these tokens holds hex-looking words ("ab", "be"), which must not be read as bytes.
    for data in (AUTH_TOKEN, CHALLENGE_TOKEN, _hex(REF / "01_s2c_NEGOTIATE_RESPONSE.hex")):
        text = dump(data)  # type: ignore[operator]
        assert render_json(decode_input(text.encode())) == render_json(decode_bytes(data))


def test_file_raw_binary_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "frame.bin"
    raw.write_bytes(_hex(REF / "04_c2s_SESSION_SETUP_REQUEST.hex"))
    code, out_raw, _ = run(capsys, f"@{raw}")
    assert code == 0 and "NTLMSSP AUTHENTICATE" in out_raw
    text = tmp_path / "frame.txt"
    text.write_text(_dump_xxd(raw.read_bytes()))
    code, out_text, _ = run(capsys, f"@{text}")
    assert code == 0 and out_text == out_raw
    code, _, err = run(capsys, f"@{tmp_path / 'missing'}")
    assert code == 2 and err.startswith("smb2auth decode: cannot read")


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    class Stdin:
        buffer = io.BytesIO(base64.b64encode(CHALLENGE_TOKEN) + b"\n")

    monkeypatch.setattr("sys.stdin", Stdin)
    code, out, _ = run(capsys, "-")
    assert code == 0 and "NTLMSSP CHALLENGE" in out and "accept-incomplete" in out


# --- JSON ----------------------------------------------------------------------------------------------


def test_json_structure(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", f"@{REF / '03_s2c_SESSION_SETUP_RESPONSE.hex'}")
    assert code == 0
    doc = json.loads(out)

    def check(node: dict[str, object]) -> None:
        assert set(node) <= {"name", "value", "note", "offset", "children"}
        assert isinstance(node["name"], str) and isinstance(node["children"], list)
        assert "value" not in node or isinstance(node["value"], str)
        assert "offset" not in node or isinstance(node["offset"], int)
        for child in node["children"]:
            check(child)

    check(doc)
    assert doc["name"] == "SMB2 SESSION_SETUP response"
    assert doc["note"] == "STATUS_MORE_PROCESSING_REQUIRED"
    assert doc["children"][0]["name"] == "SMB2 header"
    assert doc == decode_bytes(_hex(REF / "03_s2c_SESSION_SETUP_RESPONSE.hex")).to_dict()


# --- malformed input -------------------------------------------------------------------------------------


def _truncated_authenticate() -> bytes:
    ntlm = bytearray(AUTH_TOKEN[16 : 16 + 384])
    ntlm[20:22] = (300).to_bytes(2, "little")  # NtChallengeResponseLen
    return bytes(ntlm[:120])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _truncated_authenticate().hex(),
            "smb2auth decode: malformed NTLMSSP AUTHENTICATE at offset 20: NtChallengeResponse runs past"
            " the end (len 300 at 112, message is 120 bytes)",
        ),
        ("4e544c4d5353500003000000", "smb2auth decode: malformed NTLMSSP AUTHENTICATE at offset 12: message"),
        ("a1053003a00100", "smb2auth decode: malformed SPNEGO token at offset"),
        ("fe534d4240", "smb2auth decode: malformed SMB2 message at offset"),
        (
            "00000010fe534d42",
            "smb2auth decode: malformed Direct TCP frame at offset 0: StreamProtocolLength 16",
        ),
        ("0102030405", "smb2auth decode: malformed input at offset 0: not NTLMSSP"),
        ("abc", "smb2auth decode: malformed"),
        ("Authorization: NTLM !!!", "smb2auth decode: malformed base64 input at offset 0"),
        (
            "=0",
            "smb2auth decode: malformed input: text is neither valid hex nor valid base64"
            " ('=' padding before the end at offset 0)",
        ),
    ],
)
def test_malformed_one_line_exit_2(data: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, data)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(message), err
    assert "Traceback" not in err


def test_nested_failure_is_a_note_not_fatal() -> None:
    data = bytearray(_hex(REF / "04_c2s_SESSION_SETUP_REQUEST.hex"))
    at = data.find(b"NTLMSSP\x00")
    data[at + 20 : at + 22] = (0xFFFF).to_bytes(2, "little")  # NtChallengeResponseLen far past the end
    tree = decode_bytes(bytes(data))
    undecoded = tree.find("(undecoded)")
    assert undecoded is not None
    assert "NtChallengeResponse runs past the end" in (undecoded.note or "")
    assert undecoded.offset == at


# --- fuzzing ---------------------------------------------------------------------------------------------

SEEDS = [_hex(p) for p in [*SMB2_FRAMES, *sorted(SPNEGO.glob("*.hex"))]]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        op = draw(st.integers(0, 2))
        if op == 0:
            data[i] = draw(st.integers(0, 255))
        elif op == 1:
            del data[i : i + draw(st.integers(1, 40))]
        else:
            del data[i:]
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), st.binary(max_size=300), st.text(max_size=200).map(str.encode)))
def test_fuzz_library_raises_only_decode_error(data: bytes) -> None:
    try:
        tree = decode_input(data)
    except DecodeError as exc:
        assert str(exc).startswith("malformed ")
        return
    render_text(tree)
    json.loads(render_json(tree))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated().map(bytes.hex), st.text(min_size=1, max_size=200)))
def test_fuzz_cli_exit_0_or_2_never_a_traceback(text: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["decode", "--", text])
        except SystemExit as exc:  # argparse on inputs like "-h" after "--" cannot happen; keep it honest
            code = int(exc.code or 0)
    assert code in (0, 2)
    if code == 2:
        assert err.getvalue().count("\n") == 1 and "Traceback" not in err.getvalue()
    else:
        assert out.getvalue() and err.getvalue() == ""


# --- the installed entry point -------------------------------------------------------------------------


def test_installed_entry_point() -> None:
    exe = shutil.which("smb2auth")
    assert exe is not None, "smb2auth is not installed (pip install -e .)"
    ok = subprocess.run(
        [exe, "decode", "--json", f"@{SPNEGO / 'smbd_session_setup1_accept_incomplete.hex'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["name"] == "SPNEGO NegTokenResp"
    bad = subprocess.run(
        [exe, "decode", _truncated_authenticate().hex()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "at offset 20" in bad.stderr and "Traceback" not in bad.stderr


def test_validate_negotiate_ioctl_is_decoded(capsys: pytest.CaptureFixture[str]) -> None:
    # smbclient -> smbd on 3.0: FSCTL_VALIDATE_NEGOTIATE_INFO (MS-SMB2 2.2.31.4, 2.2.32.6) after TREE_CONNECT
    code, out, _ = run(capsys, f"@{FIXTURES / 'smb2' / 'smb300' / '08_c2s_IOCTL_REQUEST.hex'}")
    assert code == 0
    assert "(FSCTL_VALIDATE_NEGOTIATE_INFO)" in out and "ClientGuid:" in out
    assert "Dialect[2]: 0x0300 (3.0)" in out and "SMB2_0_IOCTL_IS_FSCTL" in out
    code, out, _ = run(capsys, f"@{FIXTURES / 'smb2' / 'smb300' / '09_s2c_IOCTL_RESPONSE.hex'}")
    assert code == 0
    assert "ServerGuid:" in out and "Dialect: 0x0300 (3.0)" in out and "SIGNING_ENABLED" in out
