"""The `spnego` family: the NegTokenInit of the first SESSION_SETUP and the NegTokenResp that carries the
AUTHENTICATE, edited as fields (RFC 4178 4.2, MS-SPNG 2.2.1), as a BER tree (X.690 length forms) or as
bytes."""

from __future__ import annotations

import random

from fuzz.differential import ber
from fuzz.differential.cases import applies, generator, junk
from fuzz.differential.script import Conversation, Edit
from fuzz.differential.wire import NTLMSSP_OID, InitSpec, RespSpec, oid_content, tlv
from smb2auth.spnego.asn1 import KRB5, MS_KRB5, NEGOEX

LEGS = ("init", "resp")
BIG_ARC = "1.3.6.1.4.1.311.2.2.4294967306"  # NTLMSSP's last arc plus 2**32


def _leg(rng: random.Random) -> str:
    return rng.choice(LEGS)


@generator("spnego")
def indefinite(rng: random.Random) -> Edit:
    leg = _leg(rng)
    return Edit("spnego.indefinite", f"spnego.{leg}.tree", (rng.randrange(1 << 16),), f"@{leg}")


@applies("spnego.indefinite")
def _indefinite(root: ber.Node, args: tuple[int], conv: Conversation) -> ber.Node:
    constructed = [n for n in ber.nodes(root) if n.constructed]
    constructed[args[0] % len(constructed)].form = ber.INDEFINITE
    return root


@generator("spnego")
def long_length(rng: random.Random) -> Edit:
    leg = _leg(rng)
    n = rng.choice((1, 2, 3, 4, 5, 8, 16, 64, 126))
    return Edit("spnego.long-length", f"spnego.{leg}.tree", (rng.randrange(1 << 16), n),
                f"{n} length bytes @{leg}" if n <= 4 else f"over 4 length bytes @{leg}")


@applies("spnego.long-length")
def _long_length(root: ber.Node, args: tuple[int, int], conv: Conversation) -> ber.Node:
    every = list(ber.nodes(root))
    every[args[0] % len(every)].form = ber.long_form(args[1])
    return root


@generator("spnego")
def node_tag(rng: random.Random) -> Edit:
    leg = _leg(rng)
    tag = rng.choice((0x04, 0x06, 0x30, 0x31, 0xA0, 0xA5, 0x24, 0x1B, 0x60, 0x00))
    return Edit("spnego.tag", f"spnego.{leg}.tree", (rng.randrange(1 << 16), tag), f"a tag changed @{leg}")


@applies("spnego.tag")
def _node_tag(root: ber.Node, args: tuple[int, int], conv: Conversation) -> ber.Node:
    every = list(ber.nodes(root))
    every[args[0] % len(every)].tag = args[1]
    return root


@generator("spnego")
def node_trailing(rng: random.Random) -> Edit:
    leg = _leg(rng)
    extra = rng.choice((b"\x00", b"\x00\x00", b"\x05\x00", b"\x04\x00", junk(rng, 3)))
    return Edit("spnego.inner-trailing", f"spnego.{leg}.tree", (rng.randrange(1 << 16), extra),
                f"bytes inside a constructed node @{leg}")


@applies("spnego.inner-trailing")
def _node_trailing(root: ber.Node, args: tuple[int, bytes], conv: Conversation) -> ber.Node:
    constructed = [n for n in ber.nodes(root) if n.constructed]
    constructed[args[0] % len(constructed)].trailing = args[1]
    return root


@generator("spnego")
def octet_constructed(rng: random.Random) -> Edit:
    leg = _leg(rng)
    return Edit("spnego.constructed-octets", f"spnego.{leg}.tree", (rng.randrange(1, 64),),
                f"mechToken as a constructed OCTET STRING @{leg}")


@applies("spnego.constructed-octets")
def _octet_constructed(root: ber.Node, args: tuple[int], conv: Conversation) -> ber.Node:
    # X.690 8.7.3: a constructed OCTET STRING is a series of primitive ones (BER, not DER).
    for node in ber.nodes(root):
        if node.tag == 0x04 and len(node.value) > 16:
            cut = args[0] % len(node.value)
            node.tag = 0x24
            node.children = [ber.Node(0x04, node.value[:cut]), ber.Node(0x04, node.value[cut:])]
            node.value = b""
            break
    return root


@generator("spnego")
def token_trailing(rng: random.Random) -> Edit:
    leg = _leg(rng)
    extra = rng.choice((b"\x00", b"\x00\x00", junk(rng, 1), junk(rng, 7)))
    return Edit("spnego.trailing", f"spnego.{leg}.bytes", (extra,), f"bytes after the token @{leg}")


@applies("spnego.trailing")
def _token_trailing(data: bytes, args: tuple[bytes], conv: Conversation) -> bytes:
    return data + args[0]


def _enclosing_length_octets(data: bytes, start: int, end: int) -> set[int]:
    """The offsets of the length octets of every TLV whose content holds data[start:end]."""
    found: set[int] = set()
    pos, stop = 0, len(data)
    while pos + 2 <= stop:
        first = data[pos + 1]
        count = first & 0x7F if first & 0x80 else 0
        content = pos + 2 + count
        length = int.from_bytes(data[pos + 2 : content], "big") if count else first
        if content > stop or not (content <= start and end <= content + length):
            pos += 2 + count + length  # a sibling before the one that holds the range
            if pos >= stop or pos > start:
                break
            continue
        found.update(range(pos + 1, content))
        if content == start:
            break
        pos, stop = content, content + length
    return found


@generator("spnego")
def token_flip(rng: random.Random) -> Edit:
    leg = _leg(rng)
    return Edit("spnego.flip", f"spnego.{leg}.bytes", (rng.randrange(1 << 16), 1 << rng.randrange(8)),
                f"a bit flipped @{leg}")


@applies("spnego.flip")
def _token_flip(data: bytes, args: tuple[int, int], conv: Conversation) -> bytes:
    out = bytearray(data)
    positions: range | list[int] = range(len(out))
    auth = conv.stash.get("auth", b"")
    start = data.find(auth) if auth else -1
    if start >= 0:
        # The AUTHENTICATE differs per server (mutate_ntlm flips it): flip the wrapper around it, but not the
        # lengths of the TLVs that hold it: their values differ with the AUTHENTICATE, so one flip would
        # lengthen one server's token and shorten the other's (spnego.long-length and spnego.cut edit them).
        skip = _enclosing_length_octets(data, start, start + len(auth))
        positions = [i for i in [*range(start), *range(start + len(auth), len(out))] if i not in skip]
    out[positions[args[0] % len(positions)]] ^= args[1]
    return bytes(out)


@generator("spnego")
def token_cut(rng: random.Random) -> Edit:
    leg = _leg(rng)
    return Edit("spnego.cut", f"spnego.{leg}.bytes", (rng.choice(("head", "tail")), rng.randrange(1, 128)),
                f"token cut @{leg}")


@applies("spnego.cut")
def _token_cut(data: bytes, args: tuple[str, int], conv: Conversation) -> bytes:
    # Counted from the start or the end, not as a share of the length: the two servers' CHALLENGEs differ,
    # so do the lengths of the tokens answering them, and the same cut must land in the same field of both.
    end, count = args
    kept = count if end == "head" else len(data) - count
    return data[: max(1, min(kept, len(data) - 1))]


# -- the NegTokenInit's fields -------------------------------------------------------------------------

MECH_LISTS = {
    "krb5 first": [oid_content(MS_KRB5), oid_content(KRB5), NTLMSSP_OID],
    "negoex first": [oid_content(NEGOEX), NTLMSSP_OID],
    "unknown first": [oid_content("1.2.3.4"), NTLMSSP_OID],
    "unknown after": [NTLMSSP_OID, oid_content("1.2.3.4")],
    "NTLM twice": [NTLMSSP_OID, NTLMSSP_OID],
    "big arc after": [NTLMSSP_OID, oid_content(BIG_ARC)],
    "big arc first": [oid_content(BIG_ARC), NTLMSSP_OID],
    "krb5 only": [oid_content(KRB5)],
    "empty": [],
    "bad OID content after": [NTLMSSP_OID, b"\x80\x01"],
    "first arc 2 wide": [NTLMSSP_OID, oid_content("2.999.1")],
}


@generator("spnego")
def mech_list(rng: random.Random) -> Edit:
    name = rng.choice(sorted(MECH_LISTS))
    return Edit("spnego.mech-list", "spnego.init", (name,), name)


@applies("spnego.mech-list")
def _mech_list(init: InitSpec, args: tuple[str], conv: Conversation) -> InitSpec:
    init.mech_oids = list(MECH_LISTS[args[0]])
    if not init.mech_oids or init.mech_oids[0] != NTLMSSP_OID:
        init.mech_token = None  # RFC 4178 3.1: the optimistic token is the first mechanism's
    return init


@generator("spnego")
def init_mic(rng: random.Random) -> Edit:
    value = junk(rng, rng.choice((0, 16)))
    return Edit("spnego.init-mic", "spnego.init", (value,), "mechListMIC in the first token")


@applies("spnego.init-mic")
def _init_mic(init: InitSpec, args: tuple[bytes], conv: Conversation) -> InitSpec:
    init.mic = args[0]
    return init


@generator("spnego")
def init_hints(rng: random.Random) -> Edit:
    name = rng.choice((b"not_defined_in_RFC4178@please_ignore", b"", b"cifs/x"))
    return Edit("spnego.init-hints", "spnego.init", (name,), "negHints in the first token")


@applies("spnego.init-hints")
def _init_hints(init: InitSpec, args: tuple[bytes], conv: Conversation) -> InitSpec:
    init.hint_name = args[0]
    return init


@generator("spnego")
def init_req_flags(rng: random.Random) -> Edit:
    value = rng.choice((b"\x00", b"\x01\x7e", b"\x00\xff", b"\x07\x80", b"", b"\x08\x00"))
    return Edit("spnego.req-flags", "spnego.init", (value,), "reqFlags")


@applies("spnego.req-flags")
def _init_req_flags(init: InitSpec, args: tuple[bytes], conv: Conversation) -> InitSpec:
    init.req_flags = args[0]
    return init


@generator("spnego")
def init_no_token(rng: random.Random) -> Edit:
    return Edit("spnego.no-optimistic-token", "spnego.init", (), "no optimistic token")


@applies("spnego.no-optimistic-token")
def _init_no_token(init: InitSpec, args: tuple[()], conv: Conversation) -> InitSpec:
    init.mech_token = None
    return init


@generator("spnego")
def init_unframed(rng: random.Random) -> Edit:
    return Edit("spnego.unframed", "spnego.init", (), "NegTokenInit without the GSS framing")


@applies("spnego.unframed")
def _init_unframed(init: InitSpec, args: tuple[()], conv: Conversation) -> InitSpec:
    init.framed = False
    return init


@generator("spnego")
def init_raw(rng: random.Random) -> Edit:
    return Edit("spnego.raw-ntlm", "spnego.init", (), "bare NTLMSSP, no SPNEGO")


@applies("spnego.raw-ntlm")
def _init_raw(init: InitSpec, args: tuple[()], conv: Conversation) -> InitSpec:
    conv.stash["raw"] = True
    return init


@generator("spnego")
def init_extra(rng: random.Random) -> Edit:
    tag = rng.choice((0xA5, 0xA6, 0xBF))
    return Edit("spnego.init-extra", "spnego.init", (tag, junk(rng, 3)), f"unknown field [{tag & 0x1F}]")


@applies("spnego.init-extra")
def _init_extra(init: InitSpec, args: tuple[int, bytes], conv: Conversation) -> InitSpec:
    init.extra.append((args[0], tlv(0x04, args[1])))
    return init


# -- the NegTokenResp's fields -------------------------------------------------------------------------


@generator("spnego")
def resp_state(rng: random.Random) -> Edit:
    state = rng.choice((0, 1, 2, 3, 4, 0x7F))
    return Edit("spnego.neg-state", "spnego.resp", (state,), f"negState {state}")


@applies("spnego.neg-state")
def _resp_state(resp: RespSpec, args: tuple[int], conv: Conversation) -> RespSpec:
    resp.neg_state = args[0]
    return resp


@generator("spnego")
def resp_mech(rng: random.Random) -> Edit:
    choices = (("NTLM", NTLMSSP_OID), ("krb5", oid_content(KRB5)), ("big arc", oid_content(BIG_ARC)))
    name, oid = rng.choice(choices)
    return Edit("spnego.supported-mech", "spnego.resp", (oid,), f"supportedMech {name}")


@applies("spnego.supported-mech")
def _resp_mech(resp: RespSpec, args: tuple[bytes], conv: Conversation) -> RespSpec:
    resp.supported_mech = args[0]
    return resp


@generator("spnego")
def resp_mic(rng: random.Random) -> Edit:
    how = rng.choice(("absent", "random", "short", "empty"))
    return Edit("spnego.resp-mic", "spnego.resp", (how, junk(rng, 16)), f"mechListMIC {how}")


@applies("spnego.resp-mic")
def _resp_mic(resp: RespSpec, args: tuple[str, bytes], conv: Conversation) -> RespSpec:
    how, value = args
    resp.mic = {"absent": None, "random": value, "short": value[:8], "empty": b""}[how]
    return resp


@generator("spnego")
def resp_as_init(rng: random.Random) -> Edit:
    return Edit("spnego.resp-as-init", "spnego.resp.bytes", (), "AUTHENTICATE in a NegTokenInit")


@applies("spnego.resp-as-init")
def _resp_as_init(data: bytes, args: tuple[()], conv: Conversation) -> bytes:
    root = ber.parse(data)
    fields = {n.tag: n for n in (root.children or [])[0].children or []}
    token = (fields[0xA2].children or [])[0].value
    mic = (fields[0xA3].children or [])[0].value if 0xA3 in fields else None
    return InitSpec(mech_token=token, mic=mic).encode()
