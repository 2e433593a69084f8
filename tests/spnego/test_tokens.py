"""SPNEGO token codec: captured tokens, DER round trips, BER inputs, fast path == pyasn1."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smb2auth.errors import MalformedMessage
from smb2auth.ntlm import crypto
from smb2auth.spnego import tokens
from smb2auth.spnego.asn1 import IGNORE_PRINCIPAL, KRB5, KRB5_USER2USER, MS_KRB5, NEGOEX, NTLMSSP, SPNEGO
from smb2auth.spnego.tokens import (
    ContextFlags,
    NegHints,
    NegState,
    NegTokenInit,
    NegTokenResp,
    NotSpnego,
    Token,
    decode,
    decode_reference,
    encode_reference,
    gss_framing,
    layout,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "spnego"


def fixture(name: str) -> bytes:
    return bytes.fromhex((FIXTURES / f"{name}.hex").read_text().strip())


# --- captured tokens (fixtures/spnego/README.md: Samba 4.17 smbclient <-> smbd, SMB 3.1.1) ------------


def test_captured_smbd_negtokeninit2() -> None:
    data = fixture("smbd_negotiate_negtokeninit2")
    token = decode(data)
    assert token == NegTokenInit((NTLMSSP,), neg_hints=NegHints(hint_name=IGNORE_PRINCIPAL))
    assert token.encode() == data


def test_captured_smbclient_negtokeninit() -> None:
    data = fixture("smbclient_session_setup1_negtokeninit")
    token = decode(data)
    assert isinstance(token, NegTokenInit)
    assert token.mech_types == (NTLMSSP,)
    assert token.req_flags is None and token.neg_hints is None and token.mech_list_mic is None
    assert token.mech_token is not None and token.mech_token[:12] == b"NTLMSSP\x00\x01\x00\x00\x00"
    assert token.encode() == data


def test_captured_smbd_accept_incomplete() -> None:
    data = fixture("smbd_session_setup1_accept_incomplete")
    token = decode(data)
    assert isinstance(token, NegTokenResp)
    assert token.neg_state is NegState.ACCEPT_INCOMPLETE
    assert token.supported_mech == NTLMSSP
    assert token.response_token is not None and token.response_token[:12] == b"NTLMSSP\x00\x02\x00\x00\x00"
    assert token.mech_list_mic is None
    assert token.encode() == data


def test_captured_smbclient_authenticate() -> None:
    data = fixture("smbclient_session_setup2_authenticate")
    token = decode(data)
    assert isinstance(token, NegTokenResp)
    assert token.neg_state is None and token.supported_mech is None
    assert token.response_token is not None and token.response_token[:12] == b"NTLMSSP\x00\x03\x00\x00\x00"
    assert token.mech_list_mic == bytes.fromhex("010000007874aa51011a47b500000000")
    assert token.encode() == data


def test_captured_smbd_accept_completed() -> None:
    data = fixture("smbd_session_setup2_accept_completed")
    token = decode(data)
    assert token == NegTokenResp(
        NegState.ACCEPT_COMPLETED, mech_list_mic=bytes.fromhex("01000000e5797f91781d84e600000000")
    )
    assert token.encode() == data


@pytest.mark.parametrize(
    "name",
    [
        "smbd_negotiate_negtokeninit2",
        "smbclient_session_setup1_negtokeninit",
        "smbd_session_setup1_accept_incomplete",
        "smbclient_session_setup2_authenticate",
        "smbd_session_setup2_accept_completed",
    ],
)
def test_captured_fast_path_agrees_with_pyasn1(name: str) -> None:
    data = fixture(name)
    fast = tokens._fast_decode(data)
    assert fast is not None
    assert fast == decode_reference(data)
    assert encode_reference(fast) == data


def test_captured_mech_list_mics_verify() -> None:
    """Recompute both captured mechListMICs (MS-NLMP 3.4.4.2 with ESS) from the ExportedSessionKey that
    tshark derived from the password (fixtures/smb2/reference_smb311/meta.json)."""
    key = bytes.fromhex("674808e162fe4bf00579e46c91602b18")
    auth = decode(fixture("smbclient_session_setup2_authenticate"))
    final = decode(fixture("smbd_session_setup2_accept_completed"))
    assert isinstance(auth, NegTokenResp) and isinstance(final, NegTokenResp)
    assert auth.response_token is not None
    flags = struct.unpack_from("<I", auth.response_token, 60)[0]  # MS-NLMP 2.2.1.3 NegotiateFlags
    der = tokens.mech_types_der((NTLMSSP,))
    for client, mic in ((True, auth.mech_list_mic), (False, final.mech_list_mic)):
        handle = crypto.rc4_init(crypto.sealkey(flags, key, client))
        assert crypto.mac(flags, handle, crypto.signkey(flags, key, client), 0, der) == mic


# --- encoding details ------------------------------------------------------------------------------


def test_mech_types_der() -> None:
    # RFC 4178 5: the MIC input is the DER SEQUENCE OF OID; bytes as in the captured NegTokenInit.
    assert tokens.mech_types_der((NTLMSSP,)) == bytes.fromhex("300c060a2b06010401823702020a")
    # Kerberos OID bytes as in Heimdal lib/gssapi/spnego/compat.c (krb5 / mskrb mechanism_oid_desc).
    assert tokens.mech_types_der((KRB5, MS_KRB5, NTLMSSP)) == bytes.fromhex(
        "3022" "06092a864886f712010202" "06092a864882f712010202" "060a2b06010401823702020a"
    )


def test_rfc_mech_list_mic_uses_tag_3_without_hints() -> None:
    token = NegTokenInit((NTLMSSP,), mech_list_mic=b"M")
    assert b"\xa3\x03\x04\x01M" in token.encode()
    assert decode(token.encode()) == token
    hinted = NegTokenInit((NTLMSSP,), neg_hints=NegHints("x"), mech_list_mic=b"M")
    assert b"\xa4\x03\x04\x01M" in hinted.encode()
    assert decode(hinted.encode()) == hinted


def test_resp_with_gss_framing_is_refused() -> None:
    inner = NegTokenResp(NegState.ACCEPT_COMPLETED).encode()
    framed = bytes((0x60, len(inner) + 8)) + bytes.fromhex("06062b0601050502") + inner
    with pytest.raises(MalformedMessage):
        decode(framed)


def test_unframed_negtokeninit_accepted() -> None:
    # The general decoder reads a negTokenInit without the RFC 2743 framing (the acceptor does not, as smbd
    # does not: tests/spnego/test_received.py).
    framed = NegTokenInit((NTLMSSP,), mech_token=b"tok").encode()
    unframed = framed[10:]
    assert unframed[0] == 0xA0
    assert decode(unframed) == decode(framed)


def test_raw_ntlmssp_reported_distinctly() -> None:
    negotiate = decode(fixture("smbclient_session_setup1_negtokeninit"))
    assert isinstance(negotiate, NegTokenInit) and negotiate.mech_token is not None
    with pytest.raises(NotSpnego) as info:
        decode(negotiate.mech_token)
    assert info.value.raw_mech == NTLMSSP
    assert tokens.is_raw_ntlmssp(negotiate.mech_token)
    with pytest.raises(NotSpnego) as other:
        decode(b"\x05garbage")
    assert other.value.raw_mech is None


def test_framing_for_another_mechanism() -> None:
    # RFC 2743 3.1: a Kerberos InitialContextToken is not SPNEGO.
    krb = bytes.fromhex("600d06092a864886f71201020201006e00")
    krb = bytes((0x60, len(krb) - 2)) + krb[2:]
    with pytest.raises(NotSpnego) as info:
        decode(krb)
    assert info.value.raw_mech == KRB5
    framing = gss_framing(krb)
    assert (framing.mech, framing.mech_offset, framing.inner_offset, framing.end) == (KRB5, 2, 13, len(krb))
    assert krb[framing.inner_offset :] == bytes.fromhex("01006e00")  # RFC 4121 4.1: TOK_ID, then KRB_AP_REQ


@pytest.mark.parametrize(
    "data", [b"", b"\x60", b"\xa0\x03\x06\x01\x00", b"\x60\x84\x00", b"\x60\x02\x04\x00", b"\x60\x80\x60\x80"]
)
def test_gss_framing_refuses_what_is_not_framing(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        gss_framing(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xa0\x80" * 20000,
        b"\x60\x80" * 30000,
        b"\x60\x84\xff\xff\xff\xff",
        b"\xa1\x80\x30\x80\xa2\x80" + b"\x24\x80" * 30000,
        b"\xa0\x0a\x30\x08\xa0\x06\x30\x04\x06\x82\xff\xff",
        b"\xa1\x0c\x30\x0a\xa1\x08\x06\x06" + b"\xff" * 6,
        bytes(70000),
        b"\xa1\x05\x30\x03\xa0\x01\x0a",
        b"\xa1\x07\x30\x05\xa0\x03\x0a\x01\x07",  # negState 7 is not defined (RFC 4178 4.2.2)
        NegTokenResp(NegState.REJECT).encode() + b"\x00",
    ],
)
def test_hostile_inputs_raise_malformed(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode(data)


# --- BER as peers may send it ----------------------------------------------------------------------


def _tlv_tree(data: bytes, pos: int = 0, end: int | None = None) -> list[tuple[int, object]]:
    """A test-side DER parser: [(tag, children or bytes)]."""
    end = len(data) if end is None else end
    out: list[tuple[int, object]] = []
    while pos < end:
        tag = data[pos]
        n = data[pos + 1]
        pos += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(data[pos : pos + k], "big")
            pos += k
        body = data[pos : pos + n]
        out.append((tag, _tlv_tree(data, pos, pos + n) if tag & 0x20 else body))
        pos += n
    return out


def _ber(tree: list[tuple[int, object]], style: st.DataObject) -> bytes:
    out = b""
    for tag, node in tree:
        form = style.draw(st.sampled_from(["minimal", "long", "wide", "indefinite"]))
        if isinstance(node, list):
            content = _ber(node, style)
        else:
            assert isinstance(node, bytes)
            content = node
        if form == "indefinite" and isinstance(node, list):
            out += bytes((tag, 0x80)) + content + b"\x00\x00"
        elif form == "long":
            out += bytes((tag, 0x84)) + len(content).to_bytes(4, "big") + content
        elif form == "wide":
            out += bytes((tag, 0x82)) + len(content).to_bytes(2, "big") + content
        else:
            out += tokens._tlv(tag, content)
    return out


def test_ber_long_form_lengths_decode() -> None:
    # X.690 8.1.3.5: long form is allowed even where short would do (BER, not DER).
    der = NegTokenResp(NegState.ACCEPT_COMPLETED, mech_list_mic=b"0123456789abcdef").encode()
    ber = bytes.fromhex("a184 00000023 3084 0000001d a081 03 0a0100 a382 0013 0481 10".replace(" ", ""))
    ber += b"0123456789abcdef"
    assert tokens._fast_decode(ber) is None
    assert decode(ber) == decode(der)


# --- hypothesis -------------------------------------------------------------------------------------

_arcs = st.integers(min_value=0, max_value=2**40)
_oids = st.one_of(
    st.sampled_from([NTLMSSP, KRB5, MS_KRB5, NEGOEX, KRB5_USER2USER]),
    st.builds(
        lambda a, b, rest: ".".join(str(x) for x in (a, b, *rest)),
        st.integers(0, 2),
        st.integers(0, 39),
        st.lists(_arcs, max_size=6),
    ),
)
_blobs = st.binary(max_size=300)
_inits = st.builds(
    NegTokenInit,
    mech_types=st.lists(_oids, max_size=5).map(tuple),
    req_flags=st.none() | st.integers(0, 2**20).map(ContextFlags),
    mech_token=st.none() | _blobs,
    neg_hints=st.none()
    | st.builds(
        NegHints,
        hint_name=st.none() | st.text(st.characters(max_codepoint=255), max_size=60),
        hint_address=st.none() | st.binary(max_size=20),
    ),
    mech_list_mic=st.none() | st.binary(max_size=40),
)
_resps = st.builds(
    NegTokenResp,
    neg_state=st.none() | st.sampled_from(NegState),
    supported_mech=st.none() | _oids,
    response_token=st.none() | _blobs,
    mech_list_mic=st.none() | st.binary(max_size=40),
)
_tokens = st.one_of(_inits, _resps)


@given(_tokens)
def test_round_trip(token: NegTokenInit | NegTokenResp) -> None:
    data = token.encode()
    assert decode(data) == token
    assert decode_reference(data) == token


@given(_tokens)
def test_hand_encoder_matches_pyasn1_der(token: NegTokenInit | NegTokenResp) -> None:
    # pyasn1's DER encoder leaves out a present-but-empty optional SEQUENCE; we keep an empty negHints
    # so that it round-trips (both are valid X.690 DER for their value).
    assume(not (isinstance(token, NegTokenInit) and token.neg_hints == NegHints()))
    assert token.encode() == encode_reference(token)


@given(_tokens)
def test_fast_path_takes_common_shapes(token: NegTokenInit | NegTokenResp) -> None:
    data = token.encode()
    fast = tokens._fast_decode(data)
    known = {NTLMSSP, KRB5, MS_KRB5, NEGOEX, KRB5_USER2USER}
    if isinstance(token, NegTokenInit):
        common = token.req_flags is None and set(token.mech_types) <= known
    else:
        common = token.supported_mech is None or token.supported_mech in known
    if common:
        assert fast == token
    else:
        assert fast is None or fast == token


@given(_tokens, st.data())
def test_ber_variants_decode_and_fast_path_agrees(token: Token, data: st.DataObject) -> None:
    # pyasn1 0.6 loses the CHOICE of an empty indefinite-length NegTokenResp; it becomes MalformedMessage.
    assume(token != NegTokenResp())
    ber = _ber(_tlv_tree(token.encode()), data)
    assert decode(ber) == token
    fast = tokens._fast_decode(ber)
    assert fast is None or fast == token


def _outcome(fn: object, data: bytes) -> object:
    assert callable(fn)
    try:
        return fn(data)
    except MalformedMessage:
        return MalformedMessage


@settings(max_examples=300)
@given(_tokens, st.data())
def test_mutations_fast_path_agrees_with_pyasn1(token: Token, data: st.DataObject) -> None:
    raw = bytearray(token.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        i = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if kind == "flip" and raw:
            raw[i] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[i:]
        else:
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=3))
    mutated = bytes(raw)
    fast = tokens._fast_decode(mutated)
    reference = _outcome(decode_reference, mutated)
    if fast is not None:
        assert fast == reference
    assert _outcome(decode, mutated) == reference


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        decode(data)


@given(st.sampled_from([0x60, 0xA0, 0xA1]), st.binary(max_size=200))
def test_arbitrary_bodies_raise_only_malformed(first: int, body: bytes) -> None:
    data = bytes((first,)) + tokens._der_len(len(body)) + body
    with contextlib.suppress(MalformedMessage):
        decode(data)


_leaves = st.tuples(st.sampled_from([0x04, 0x06, 0x0A, 0x03, 0x1B, 0x01]), st.binary(max_size=12))
_trees = st.recursive(
    _leaves,
    lambda kids: st.tuples(
        st.sampled_from([0x60, 0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0x30, 0x24]), st.lists(kids, max_size=4)
    ),
    max_leaves=16,
)


@settings(max_examples=400)
@given(_trees, st.data())
def test_structured_garbage_raises_only_malformed(tree: tuple[int, object], data: st.DataObject) -> None:
    """Well-nested BER of the right tags in the wrong places (found: an empty indefinite SEQUENCE)."""
    encoded = _ber([tree], data)
    reference = _outcome(decode_reference, encoded)
    fast = tokens._fast_decode(encoded)
    if fast is not None:
        assert fast == reference
    assert _outcome(decode, encoded) == reference



def _expected_parts(token: Token) -> dict[str, tuple[int, bytes]]:
    """Each part `layout` names, with the tag it starts with and the contents its value holds
    (RFC 4178 4.2.1 / 4.2.2, MS-SPNG 2.2.1), from the dataclass."""
    parts: dict[str, tuple[int, bytes]] = {}
    if isinstance(token, NegTokenResp):
        if token.neg_state is not None:
            parts["negState"] = (0xA0, bytes((token.neg_state,)))
        if token.supported_mech is not None:
            parts["supportedMech"] = (0xA1, tokens._oid_tlv(token.supported_mech)[2:])
        if token.response_token is not None:
            parts["responseToken"] = (0xA2, token.response_token)
        if token.mech_list_mic is not None:
            parts["mechListMIC"] = (0xA3, token.mech_list_mic)
        return parts
    hinted = token.neg_hints is not None
    parts["thisMech"] = (0x06, tokens._oid_tlv(SPNEGO)[2:])
    if token.mech_types or not hinted:
        parts["mechTypes"] = (0xA0, b"".join(tokens._oid_tlv(m) for m in token.mech_types))
        for i, mech in enumerate(token.mech_types):
            parts[f"mechTypes[{i}]"] = (0x06, tokens._oid_tlv(mech)[2:])
    if token.req_flags is not None:
        parts["reqFlags"] = (0xA1, tokens._bit_string(int(token.req_flags))[2:])
    if token.mech_token is not None:
        parts["mechToken"] = (0xA2, token.mech_token)
    if token.neg_hints is not None:
        parts["negHints"] = (0xA3, b"")
        if token.neg_hints.hint_name is not None:
            parts["hintName"] = (0xA0, token.neg_hints.hint_name.encode("latin-1"))
        if token.neg_hints.hint_address is not None:
            parts["hintAddress"] = (0xA1, token.neg_hints.hint_address)
    if token.mech_list_mic is not None:
        parts["mechListMIC"] = (0xA4 if hinted else 0xA3, token.mech_list_mic)
    return parts


@given(_tokens)
def test_layout_points_at_each_part(token: Token) -> None:
    data = token.encode()
    spans = layout(token)
    root = "negTokenInit" if isinstance(token, NegTokenInit) else "negTokenResp"
    assert data[spans.pop(root).start] == (0xA0 if root == "negTokenInit" else 0xA1)
    expected = _expected_parts(token)
    assert set(spans) == set(expected)
    for name, (tag, value) in expected.items():
        assert data[spans[name].start] == tag, name
        assert data[spans[name].value : spans[name].value + len(value)] == value, name
