"""The `ntlm` family: the AUTHENTICATE inside a real handshake (its spec before it is computed, its bytes
after), and the NEGOTIATE before it."""

from __future__ import annotations

import random
import struct

from fuzz.differential.cases import applies, generator, junk
from fuzz.differential.ntlm import AuthSpec
from fuzz.differential.script import Conversation, Edit
from smb2auth.ntlm.messages import (
    NTLMSSP_NEGOTIATE_KEY_EXCH,
    NTLMSSP_NEGOTIATE_OEM,
    NTLMSSP_NEGOTIATE_UNICODE,
    AvId,
    AvPair,
    NegotiateFlags,
    encode_unicode,
    pack_u32,
)

# -- ntlm: the AUTHENTICATE ---------------------------------------------------------------------------


@generator("ntlm")
def ntlm_flag(rng: random.Random) -> Edit:
    bit = 1 << rng.randrange(32)
    return Edit("ntlm.flag", "auth", (bit,), NegotiateFlags(bit).name or hex(bit))


@applies("ntlm.flag")
def _ntlm_flag(spec: AuthSpec, args: tuple[int], conv: Conversation) -> AuthSpec:
    spec.flags ^= args[0]
    return spec


@generator("ntlm")
def ntlm_oem(rng: random.Random) -> Edit:
    both = rng.random() < 0.3
    return Edit("ntlm.oem", "auth", (both,), "OEM and UNICODE" if both else "OEM without UNICODE")


@applies("ntlm.oem")
def _ntlm_oem(spec: AuthSpec, args: tuple[bool], conv: Conversation) -> AuthSpec:
    spec.flags |= NTLMSSP_NEGOTIATE_OEM
    if not args[0]:
        spec.flags &= ~NTLMSSP_NEGOTIATE_UNICODE
    return spec


@generator("ntlm")
def ntlm_nt_length(rng: random.Random) -> Edit:
    n = rng.choice((0, 1, 8, 16, 20, 23, 24, 25, 28, 44, 47, 48, 52))
    return Edit("ntlm.nt-length", "auth", (n,), f"NT response of {n} bytes")


@applies("ntlm.nt-length")
def _ntlm_nt_length(spec: AuthSpec, args: tuple[int], conv: Conversation) -> AuthSpec:
    spec.nt_length = args[0]
    return spec


@generator("ntlm")
def ntlm_lm(rng: random.Random) -> Edit:
    n = rng.choice((0, 1, 16, 24, 25))
    return Edit("ntlm.lm", "auth", (junk(rng, n),), f"LM response of {n} bytes")


@applies("ntlm.lm")
def _ntlm_lm(spec: AuthSpec, args: tuple[bytes], conv: Conversation) -> AuthSpec:
    spec.lm = args[0]
    return spec


@generator("ntlm")
def ntlm_channel_bindings(rng: random.Random) -> Edit:
    n = rng.choice((16, 16, 16, 0, 8, 32))
    return Edit("ntlm.channel-bindings", "auth", (junk(rng, n),), f"random MsvAvChannelBindings, {n} bytes")


@applies("ntlm.channel-bindings")
def _ntlm_channel_bindings(spec: AuthSpec, args: tuple[bytes], conv: Conversation) -> AuthSpec:
    spec.av_pairs = [AvPair(AvId.MsvAvChannelBindings, args[0]) if p.id == AvId.MsvAvChannelBindings else p
                     for p in spec.av_pairs]
    return spec


@generator("ntlm")
def ntlm_av_drop(rng: random.Random) -> Edit:
    av_id = rng.choice((1, 2, 3, 4, 6, 7, 10))
    return Edit("ntlm.av-drop", "auth", (av_id,), f"{AvId(av_id).name} dropped")


@applies("ntlm.av-drop")
def _ntlm_av_drop(spec: AuthSpec, args: tuple[int], conv: Conversation) -> AuthSpec:
    spec.av_pairs = [p for p in spec.av_pairs if p.id != args[0]]
    return spec


@generator("ntlm")
def ntlm_av_change(rng: random.Random) -> Edit:
    av_id = rng.choice((1, 2, 3, 4, 7))
    return Edit("ntlm.av-change", "auth", (av_id, rng.randrange(64), 1 << rng.randrange(8)),
                f"{AvId(av_id).name} changed")


@applies("ntlm.av-change")
def _ntlm_av_change(spec: AuthSpec, args: tuple[int, int, int], conv: Conversation) -> AuthSpec:
    av_id, at, bit = args
    out = []
    for p in spec.av_pairs:
        if p.id == av_id and p.value:
            value = bytearray(p.value)
            value[at % len(value)] ^= bit
            p = AvPair(p.id, bytes(value))
        out.append(p)
    spec.av_pairs = out
    return spec


@generator("ntlm")
def ntlm_av_add(rng: random.Random) -> Edit:
    av_id = rng.choice((5, 8, 9, 11, 12, 0x100, 0xFFFF, 1, 6))
    if av_id == 9:
        value = encode_unicode(rng.choice(("cifs/127.0.0.1", "cifs/EVIL", "", "HOST/peersmbd")))
    elif av_id == 8:
        value = struct.pack("<II", 48, 0) + junk(rng, 40)
    elif av_id == 6:
        value = pack_u32(rng.randrange(16))
    else:
        value = junk(rng, rng.choice((0, 4, 16)))
    name = AvId(av_id).name if av_id in AvId._value2member_map_ else f"AvId 0x{av_id:04x}"
    return Edit("ntlm.av-add", "auth", (av_id, value), f"extra {name}")


@applies("ntlm.av-add")
def _ntlm_av_add(spec: AuthSpec, args: tuple[int, bytes], conv: Conversation) -> AuthSpec:
    spec.av_pairs = [*spec.av_pairs, AvPair(args[0], args[1])]
    return spec


@generator("ntlm")
def ntlm_av_flags(rng: random.Random) -> Edit:
    value = rng.choice((0, 1, 3, 4, 6, 0xFFFFFFFF, 0x80))
    return Edit("ntlm.av-flags", "auth", (value,), f"MsvAvFlags 0x{value:x}")


@applies("ntlm.av-flags")
def _ntlm_av_flags(spec: AuthSpec, args: tuple[int], conv: Conversation) -> AuthSpec:
    spec.av_pairs = [AvPair(AvId.MsvAvFlags, pack_u32(args[0])) if p.id == AvId.MsvAvFlags else p
                     for p in spec.av_pairs]
    return spec


@generator("ntlm")
def ntlm_av_order(rng: random.Random) -> Edit:
    return Edit("ntlm.av-order", "auth", (rng.randrange(1 << 30),), "AV pairs reordered")


@applies("ntlm.av-order")
def _ntlm_av_order(spec: AuthSpec, args: tuple[int], conv: Conversation) -> AuthSpec:
    random.Random(args[0]).shuffle(spec.av_pairs)
    return spec


@generator("ntlm")
def ntlm_mic(rng: random.Random) -> Edit:
    how = rng.choice(("zero", "flip", "absent"))
    return Edit("ntlm.mic", "auth", (how,), f"MIC {how}")


@applies("ntlm.mic")
def _ntlm_mic(spec: AuthSpec, args: tuple[str], conv: Conversation) -> AuthSpec:
    spec.mic = args[0]
    return spec


@generator("ntlm")
def ntlm_no_mic_flag(rng: random.Random) -> Edit:
    return Edit("ntlm.no-mic", "auth", (), "no MIC, MsvAvFlags without MIC_PRESENT")


@applies("ntlm.no-mic")
def _ntlm_no_mic(spec: AuthSpec, args: tuple[()], conv: Conversation) -> AuthSpec:
    spec.mic = "absent"
    spec.av_pairs = [AvPair(AvId.MsvAvFlags, pack_u32(0)) if p.id == AvId.MsvAvFlags else p
                     for p in spec.av_pairs]
    return spec


@generator("ntlm")
def ntlm_session_key(rng: random.Random) -> Edit:
    n = rng.choice((0, 8, 15, 17, 32))
    return Edit("ntlm.session-key", "auth", (n,), f"EncryptedRandomSessionKey of {n} bytes")


@applies("ntlm.session-key")
def _ntlm_session_key(spec: AuthSpec, args: tuple[int], conv: Conversation) -> AuthSpec:
    spec.session_key_length = args[0]
    return spec


@generator("ntlm")
def ntlm_no_key_exch(rng: random.Random) -> Edit:
    return Edit("ntlm.no-key-exch", "auth", (), "KEY_EXCH cleared")


@applies("ntlm.no-key-exch")
def _ntlm_no_key_exch(spec: AuthSpec, args: tuple[()], conv: Conversation) -> AuthSpec:
    spec.flags &= ~NTLMSSP_NEGOTIATE_KEY_EXCH
    return spec


@generator("ntlm")
def ntlm_names(rng: random.Random) -> Edit:
    which = rng.choice(("user", "domain", "workstation"))
    value = rng.choice(("", "ALICE", "x" * 300, "alice\x00", ".", "testgrp", "PEERSMBD", "\u00e9"))
    return Edit("ntlm.names", "auth", (which, value), f"{which} {'long' if len(value) > 20 else repr(value)}")


@applies("ntlm.names")
def _ntlm_names(spec: AuthSpec, args: tuple[str, str], conv: Conversation) -> AuthSpec:
    setattr(spec, args[0], args[1])
    return spec


@generator("ntlm")
def ntlm_wrong_password(rng: random.Random) -> Edit:
    return Edit("ntlm.wrong-password", "auth", (), "wrong password")


@applies("ntlm.wrong-password")
def _ntlm_wrong_password(spec: AuthSpec, args: tuple[()], conv: Conversation) -> AuthSpec:
    spec.wrong_password = True
    return spec


@generator("ntlm")
def ntlm_blob_trailer(rng: random.Random) -> Edit:
    trailer = rng.choice((b"", b"\x00" * 8, b"\xff" * 4))
    return Edit("ntlm.blob-trailer", "auth", (trailer,), f"blob trailer of {len(trailer)} bytes")


@applies("ntlm.blob-trailer")
def _ntlm_blob_trailer(spec: AuthSpec, args: tuple[bytes], conv: Conversation) -> AuthSpec:
    spec.blob_trailer = args[0]
    return spec


@generator("ntlm")
def ntlm_no_version(rng: random.Random) -> Edit:
    return Edit("ntlm.no-version", "auth", (), "no VERSION (so no MIC)")


@applies("ntlm.no-version")
def _ntlm_no_version(spec: AuthSpec, args: tuple[()], conv: Conversation) -> AuthSpec:
    spec.version = False
    return spec


FLIP_REGIONS = {
    "the fixed part": None,
    "LmChallengeResponse": 12,
    "NtChallengeResponse": 20,
    "DomainName": 28,
    "UserName": 36,
    "Workstation": 44,
    "EncryptedRandomSessionKey": 52,
}


@generator("ntlm")
def ntlm_raw_flip(rng: random.Random) -> Edit:
    # The payload's layout follows the server's CHALLENGE (its target info comes back in the NT response):
    # a flip names a field and a byte in it, so both servers see the same byte of the same field flipped.
    region = rng.choice(sorted(FLIP_REGIONS))
    return Edit("ntlm.raw-flip", "auth.bytes", (region, rng.randrange(1 << 16), 1 << rng.randrange(8)),
                f"a bit of {region} flipped")


@applies("ntlm.raw-flip")
def _ntlm_raw_flip(data: bytes, args: tuple[str, int, int], conv: Conversation) -> bytes:
    region, index, bit = args
    out = bytearray(data)
    field_at = FLIP_REGIONS[region]
    if field_at is None:
        start, length = 0, min(len(out), 88)  # MS-NLMP 2.2.1.3: the fields before the payload
    elif field_at + 8 <= len(out):
        length, _, start = struct.unpack_from("<HHI", out, field_at)
        length = max(0, min(length, len(out) - start))
    else:
        length = 0
    if length:
        out[start + index % length] ^= bit
    return bytes(out)


@generator("ntlm")
def ntlm_raw_field(rng: random.Random) -> Edit:
    at = rng.choice((12, 20, 28, 36, 44, 52))
    part = rng.choice(("len", "maxlen", "offset"))
    value = rng.choice((0, 1, 0xFFFF, rng.randrange(1 << 16), 0xFFFFFFFF))
    return Edit("ntlm.raw-field", "auth.bytes", (at, part, value), f"field at {at}: {part}")


@applies("ntlm.raw-field")
def _ntlm_raw_field(data: bytes, args: tuple[int, str, int], conv: Conversation) -> bytes:
    at, part, value = args
    out = bytearray(data)
    if part == "offset":
        struct.pack_into("<I", out, at + 4, value & 0xFFFFFFFF)
    else:
        struct.pack_into("<H", out, at + (0 if part == "len" else 2), value & 0xFFFF)
    return bytes(out)


@generator("ntlm")
def ntlm_raw_cut(rng: random.Random) -> Edit:
    n = rng.choice((8, 12, 16, 63, 64, 72, 88, 100))
    return Edit("ntlm.raw-cut", "auth.bytes", (n,), f"AUTHENTICATE cut to {n} bytes")


@applies("ntlm.raw-cut")
def _ntlm_raw_cut(data: bytes, args: tuple[int], conv: Conversation) -> bytes:
    return data[: args[0]]


@generator("ntlm")
def ntlm_raw_append(rng: random.Random) -> Edit:
    n = rng.choice((1, 4, 16, 200))
    return Edit("ntlm.raw-append", "auth.bytes", (junk(rng, n),), f"{n} bytes after the AUTHENTICATE")


@applies("ntlm.raw-append")
def _ntlm_raw_append(data: bytes, args: tuple[bytes], conv: Conversation) -> bytes:
    return data + args[0]


@generator("ntlm")
def ntlm_message_type(rng: random.Random) -> Edit:
    kind = rng.choice((0, 1, 2, 4, 0x103))
    return Edit("ntlm.message-type", "auth.bytes", (kind,), f"MessageType {kind}")


@applies("ntlm.message-type")
def _ntlm_message_type(data: bytes, args: tuple[int], conv: Conversation) -> bytes:
    return data[:8] + struct.pack("<I", args[0]) + data[12:]


@generator("ntlm")
def ntlm_negotiate_flag(rng: random.Random) -> Edit:
    bit = 1 << rng.randrange(32)
    return Edit("ntlm.negotiate-flag", "ntlm.negotiate", (bit,), f"NEGOTIATE {NegotiateFlags(bit).name}")


@applies("ntlm.negotiate-flag")
def _ntlm_negotiate_flag(data: bytes, args: tuple[int], conv: Conversation) -> bytes:
    (flags,) = struct.unpack_from("<I", data, 12)
    return data[:12] + struct.pack("<I", flags ^ args[0]) + data[16:]


@generator("ntlm")
def ntlm_negotiate_cut(rng: random.Random) -> Edit:
    n = rng.choice((8, 12, 16, 24, 32))
    return Edit("ntlm.negotiate-cut", "ntlm.negotiate", (n,), f"NEGOTIATE cut to {n} bytes")


@applies("ntlm.negotiate-cut")
def _ntlm_negotiate_cut(data: bytes, args: tuple[int], conv: Conversation) -> bytes:
    return data[: args[0]]
