"""NTLM wire codec (MS-NLMP 2.2): NEGOTIATE, CHALLENGE, AUTHENTICATE and their substructures.

Every parse failure raises `MalformedMessage`; every offset and length is checked before slicing.
"""

from __future__ import annotations

import codecs
import enum
import functools
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final, NamedTuple

from smb2auth._frozen import quick_init
from smb2auth.errors import MalformedMessage

SIGNATURE = b"NTLMSSP\x00"
OEM_ENCODING = "cp437"

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_FIELD = struct.Struct("<HHI")
_PREFIX = struct.Struct("<8sI")


class MessageType(enum.IntEnum):
    """MS-NLMP 2.2: MessageType."""

    NtLmNegotiate = 1
    NtLmChallenge = 2
    NtLmAuthenticate = 3


class NegotiateFlags(enum.IntFlag):
    """MS-NLMP 2.2.2.5: NEGOTIATE flags."""

    NTLMSSP_NEGOTIATE_UNICODE = 0x00000001
    NTLMSSP_NEGOTIATE_OEM = 0x00000002
    NTLMSSP_REQUEST_TARGET = 0x00000004
    NTLMSSP_RESERVED_R10 = 0x00000008
    NTLMSSP_NEGOTIATE_SIGN = 0x00000010
    NTLMSSP_NEGOTIATE_SEAL = 0x00000020
    NTLMSSP_NEGOTIATE_DATAGRAM = 0x00000040
    NTLMSSP_NEGOTIATE_LM_KEY = 0x00000080
    NTLMSSP_RESERVED_R9 = 0x00000100
    NTLMSSP_NEGOTIATE_NTLM = 0x00000200
    NTLMSSP_RESERVED_R8 = 0x00000400
    NTLMSSP_NEGOTIATE_ANONYMOUS = 0x00000800
    NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED = 0x00001000
    NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED = 0x00002000
    NTLMSSP_RESERVED_R7 = 0x00004000
    NTLMSSP_NEGOTIATE_ALWAYS_SIGN = 0x00008000
    NTLMSSP_TARGET_TYPE_DOMAIN = 0x00010000
    NTLMSSP_TARGET_TYPE_SERVER = 0x00020000
    NTLMSSP_RESERVED_R6 = 0x00040000
    NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
    NTLMSSP_NEGOTIATE_IDENTIFY = 0x00100000
    NTLMSSP_RESERVED_R5 = 0x00200000
    NTLMSSP_REQUEST_NON_NT_SESSION_KEY = 0x00400000
    NTLMSSP_NEGOTIATE_TARGET_INFO = 0x00800000
    NTLMSSP_RESERVED_R4 = 0x01000000
    NTLMSSP_NEGOTIATE_VERSION = 0x02000000
    NTLMSSP_RESERVED_R3 = 0x04000000
    NTLMSSP_RESERVED_R2 = 0x08000000
    NTLMSSP_RESERVED_R1 = 0x10000000
    NTLMSSP_NEGOTIATE_128 = 0x20000000
    NTLMSSP_NEGOTIATE_KEY_EXCH = 0x40000000
    NTLMSSP_NEGOTIATE_56 = 0x80000000


# The flags the handshake tests and sets, as plain ints under their spec names: `int & NegotiateFlags.X`
# builds an enum member on every call, 10-20 % of a handshake (benchmarks/bench_ntlm.py).
NTLMSSP_NEGOTIATE_UNICODE: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_UNICODE)
NTLMSSP_NEGOTIATE_OEM: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_OEM)
NTLMSSP_REQUEST_TARGET: Final = int(NegotiateFlags.NTLMSSP_REQUEST_TARGET)
NTLMSSP_NEGOTIATE_SIGN: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_SIGN)
NTLMSSP_NEGOTIATE_SEAL: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_SEAL)
NTLMSSP_NEGOTIATE_DATAGRAM: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_DATAGRAM)
NTLMSSP_NEGOTIATE_LM_KEY: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_LM_KEY)
NTLMSSP_NEGOTIATE_NTLM: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_NTLM)
NTLMSSP_NEGOTIATE_ANONYMOUS: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_ANONYMOUS)
NTLMSSP_NEGOTIATE_ALWAYS_SIGN: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_ALWAYS_SIGN)
NTLMSSP_TARGET_TYPE_SERVER: Final = int(NegotiateFlags.NTLMSSP_TARGET_TYPE_SERVER)
NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY: Final = int(
    NegotiateFlags.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
)
NTLMSSP_NEGOTIATE_IDENTIFY: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_IDENTIFY)
NTLMSSP_REQUEST_NON_NT_SESSION_KEY: Final = int(NegotiateFlags.NTLMSSP_REQUEST_NON_NT_SESSION_KEY)
NTLMSSP_NEGOTIATE_TARGET_INFO: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_TARGET_INFO)
NTLMSSP_NEGOTIATE_VERSION: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_VERSION)
NTLMSSP_NEGOTIATE_128: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_128)
NTLMSSP_NEGOTIATE_KEY_EXCH: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_KEY_EXCH)
NTLMSSP_NEGOTIATE_56: Final = int(NegotiateFlags.NTLMSSP_NEGOTIATE_56)


class AvId(enum.IntEnum):
    """MS-NLMP 2.2.2.1: AV_PAIR AvId."""

    MsvAvEOL = 0
    MsvAvNbComputerName = 1
    MsvAvNbDomainName = 2
    MsvAvDnsComputerName = 3
    MsvAvDnsDomainName = 4
    MsvAvDnsTreeName = 5
    MsvAvFlags = 6
    MsvAvTimestamp = 7
    MsvAvSingleHost = 8
    MsvAvTargetName = 9
    MsvAvChannelBindings = 10


_AV_IDS: dict[int, int] = {int(a): a for a in AvId}


class AvFlags(enum.IntFlag):
    """MS-NLMP 2.2.2.1: MsvAvFlags bits."""

    ACCOUNT_AUTHENTICATION_CONSTRAINED = 0x1
    MIC_PRESENT = 0x2
    UNTRUSTED_SPN_SOURCE = 0x4


def _fail(message: str, offset: int | None = None) -> MalformedMessage:
    return MalformedMessage(message, offset=offset)


def _inside(exc: MalformedMessage, start: int) -> MalformedMessage:
    """`exc`, about a part that starts at `start`, with its offset counted from where the whole starts."""
    return MalformedMessage(exc.reason, offset=start + (exc.offset or 0), status=exc.status)


# The codec functions themselves: str.encode / bytes.decode look "utf-16-le" up in the codec registry and
# go through its Python wrapper on every call (they have a fast path for UTF-8, not for UTF-16-LE).
_utf_16_le_decode = codecs.utf_16_le_decode
_utf_16_le_encode = codecs.utf_16_le_encode


def decode_unicode(data: bytes, what: str = "string", *, offset: int | None = None) -> str:
    """UTF-16LE as on the wire; odd lengths are malformed, unpaired surrogates survive. `offset` is where
    `data` starts in the message, for the error."""
    if len(data) % 2:
        raise _fail(f"odd-length UTF-16 {what}", offset)
    return _utf_16_le_decode(data, "surrogatepass", True)[0]


def encode_unicode(text: str) -> bytes:
    return _utf_16_le_encode(text, "surrogatepass")[0]


def decode_oem(data: bytes) -> str:
    """OEM strings are 8-bit; every byte maps to a character, so this never fails."""
    return data.decode(OEM_ENCODING)


def encode_oem(text: str) -> bytes:
    return text.encode(OEM_ENCODING, "replace")


def encode_string(text: str, flags: int) -> bytes:
    # MS-NLMP 2.2.2.5: UNICODE wins over OEM when both are set.
    if flags & NTLMSSP_NEGOTIATE_UNICODE:
        return encode_unicode(text)
    return encode_oem(text)


def decode_string(data: bytes, flags: int, what: str = "string", *, offset: int | None = None) -> str:
    if flags & NTLMSSP_NEGOTIATE_UNICODE:
        return decode_unicode(data, what, offset=offset)
    return decode_oem(data)


def message_type(data: bytes) -> int:
    """The MessageType of an NTLM message (MS-NLMP 2.2), after checking the signature."""
    if len(data) < _PREFIX.size:
        raise _fail(f"message is {len(data)} bytes, shorter than the 12-byte NTLM prefix", len(data))
    signature, kind = _PREFIX.unpack_from(data)
    if signature != SIGNATURE:
        raise _fail("NTLM signature is not 'NTLMSSP\\0'", 0)
    return int(kind)


def negotiate_flags(data: bytes) -> int:
    """The NegotiateFlags of a NEGOTIATE_MESSAGE, all an acceptor needs of it (MS-NLMP 2.2.1.1: the domain
    and workstation are informational). Samba ntlmssp_server_negotiate reads no more than these 16 bytes."""
    _check_prefix(data, _NEGOTIATE_PREFIX, 16)
    return int(_U32.unpack_from(data, 12)[0])


def _check_prefix(data: bytes, prefix: bytes, minimum: int) -> None:
    """`data` starts with `prefix` (MS-NLMP 2.2: Signature and MessageType, as `_prefix` packs them) and has
    `minimum` bytes; the common case is one comparison, the errors name what is wrong."""
    if len(data) >= minimum and data[:12] == prefix:
        return
    expected = MessageType(prefix[8])
    kind = message_type(data)
    if kind != expected:
        raise _fail(f"expected {expected.name} (type {int(expected)}), got type {kind}", 8)
    reason = f"message is {len(data)} bytes, shorter than the {minimum}-byte {expected.name} header"
    raise _fail(reason, len(data))


def _payload(data: bytes, length: int, offset: int, name: str, at: int) -> bytes:
    """The payload a (Len, MaxLen, BufferOffset) field at `at` names, checked against the message. `data` is
    bytes (each unpack converts its input once), so the slice is too."""
    if length == 0:
        return b""
    if offset + length > len(data):
        reason = f"{name} runs past the end (len {length} at {offset}, message is {len(data)} bytes)"
        raise _fail(reason, at)
    return data[offset : offset + length]


def _check_max_lengths(fields: tuple[int, ...]) -> None:
    """MS-NLMP 2.2.1.3 has MaxLen equal Len and ignored on receipt; smbd (Samba msrpc_parse) refuses a field
    that is not empty whose MaxLen differs, and so do we, as Samba does. The session key field (the sixth)
    is not refused: Samba then reads the message without it."""
    for i in range(0, 15, 3):
        if fields[i] != fields[i + 1]:
            name, at = AuthenticateMessage.PAYLOAD_FIELDS[i // 3]
            raise _fail(f"{name} Len {fields[i]} and MaxLen {fields[i + 1]} differ", at)


class PayloadField(NamedTuple):
    """MS-NLMP 2.2.1: a (Len, MaxLen, BufferOffset) field as on the wire: the payload it names, where the
    field sits in the message, and what it says."""

    name: str
    at: int
    length: int
    max_length: int
    offset: int


def _payload_fields(data: bytes, layout: tuple[tuple[str, int], ...]) -> tuple[PayloadField, ...]:
    return tuple(PayloadField(name, at, *_FIELD.unpack_from(data, at)) for name, at in layout)


_AV_EOL: Final = 0  # MsvAvEOL, as a plain int for the codec's loops
_AV_EOL_PAIR = b"\x00\x00\x00\x00"


_AV_HEAD = struct.Struct("<HH")


class AvPair(NamedTuple):
    """MS-NLMP 2.2.2.1: one AV_PAIR. `id` is an AvId when known, the raw number otherwise. A NamedTuple,
    as immutable as a frozen dataclass and a third of its construction cost: a handshake parses a dozen."""

    id: int
    value: bytes

    def pack(self) -> bytes:
        return _AV_HEAD.pack(self.id, len(self.value)) + self.value

    @classmethod
    def unpack_all(cls, data: bytes) -> tuple[AvPair, ...]:
        """Parse a list up to its MsvAvEOL (MS-NLMP 2.2.2.1); bytes after the EOL are not part of it."""
        return cls.unpack_list(data)[0]

    @classmethod
    def unpack_list(cls, data: bytes, start: int = 0) -> tuple[tuple[AvPair, ...], int]:
        """Parse a list that starts at `start`; returns the pairs (without the EOL) and the offset just past
        the EOL. Offsets in errors count from `start`."""
        data = bytes(data)
        pairs: list[AvPair] = []
        pos = start
        end = len(data)
        head = _AV_HEAD.unpack_from
        new = tuple.__new__  # AvPair(id, value) without the generated __new__'s Python frame
        known = _AV_IDS.get
        while pos + 4 <= end:
            av_id, av_len = head(data, pos)
            pos += 4
            stop = pos + av_len
            if stop > end:
                name = AvId(av_id).name if av_id in _AV_IDS else f"AvId {av_id}"
                reason = f"AV_PAIR {name} value runs past the end of the list (len {av_len})"
                raise _fail(reason, pos - start)
            if av_id == _AV_EOL:
                # MS-NLMP 2.2.2.1 has MsvAvEOL's AvLen 0; a value that fits is skipped, as Samba does
                # (ndr_pull_AV_PAIR_LIST), and the list ends there.
                return tuple(pairs), stop
            pairs.append(new(cls, (known(av_id, av_id), data[pos:stop])))
            pos = stop
        raise _fail("AV_PAIR list does not end with MsvAvEOL", pos - start)

    @classmethod
    def pack_all(cls, pairs: tuple[AvPair, ...] | list[AvPair]) -> bytes:
        """Encode pairs and the terminating MsvAvEOL (MS-NLMP 2.2.2.1)."""
        head = _AV_HEAD.pack
        body = [head(av_id, len(value)) + value for av_id, value in pairs if av_id != _AV_EOL]
        return b"".join(body) + _AV_EOL_PAIR


def av_get(pairs: tuple[AvPair, ...] | list[AvPair], av_id: int) -> bytes | None:
    for pair in pairs:
        if pair.id == av_id:
            return pair.value
    return None


@quick_init
@dataclass(frozen=True)
class SingleHostData:
    """MS-NLMP 2.2.2.2: Single_Host_Data, the value of MsvAvSingleHost."""

    custom_data: bytes
    machine_id: bytes
    size: int = 48
    z4: int = 0

    _S: ClassVar[struct.Struct] = struct.Struct("<II8s32s")
    SIZE: ClassVar[int] = 48
    OFFSETS: ClassVar[Mapping[str, int]] = {"Size": 0, "Z4": 4, "CustomData": 8, "MachineID": 16}

    def pack(self) -> bytes:
        return self._S.pack(self.size, self.z4, self.custom_data, self.machine_id)

    @classmethod
    def unpack(cls, data: bytes) -> SingleHostData:
        if len(data) != cls.SIZE:
            raise _fail(f"Single_Host_Data is {cls.SIZE} bytes, not {len(data)}", 0)
        size, z4, custom, machine = cls._S.unpack(data)
        return cls(custom, machine, size, z4)


@quick_init
@dataclass(frozen=True)
class Version:
    """MS-NLMP 2.2.2.10: VERSION (informational only)."""

    major: int = 10
    minor: int = 0
    build: int = 20348
    revision: int = 15
    reserved: bytes = b"\x00\x00\x00"

    _S: ClassVar[struct.Struct] = struct.Struct("<BBH3sB")
    SIZE: ClassVar[int] = 8

    def pack(self) -> bytes:
        return self._packed

    @functools.cached_property
    def _packed(self) -> bytes:
        # Packed once per value: each context sends the same VERSION in every message.
        return self._S.pack(self.major, self.minor, self.build, self.reserved, self.revision)

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> Version:
        if offset + 8 > len(data):
            raise _fail("VERSION truncated", offset)
        return _version(bytes(data[offset : offset + 8]))


@functools.lru_cache(maxsize=64)
def _version(raw: bytes) -> Version:
    """A VERSION from its 8 bytes; peers send a handful, so the frozen values are shared."""
    major, minor, build, reserved, revision = Version._S.unpack(raw)
    return Version(major, minor, build, revision, reserved)


def _lowest_offset(data: bytes, fields: tuple[int, ...]) -> int:
    """The lowest payload offset of the non-empty fields among `fields` (Len, MaxLen, BufferOffset, ...
    as unpacked), the message length when all are empty."""
    lowest = len(data)
    for i in range(0, len(fields), 3):
        if fields[i] and fields[i + 2] < lowest:
            lowest = fields[i + 2]
    return lowest


def _prefix(kind: MessageType) -> bytes:
    return _PREFIX.pack(SIGNATURE, kind)


_NEGOTIATE_PREFIX = _prefix(MessageType.NtLmNegotiate)


@quick_init
@dataclass(frozen=True)
class NegotiateMessage:
    """MS-NLMP 2.2.1.1: NEGOTIATE_MESSAGE. Domain and workstation are always OEM strings."""

    flags: int
    domain: str = ""
    workstation: str = ""
    version: Version | None = None

    # NegotiateFlags, DomainNameFields, WorkstationFields after the 12-byte prefix.
    _BODY: ClassVar[struct.Struct] = struct.Struct("<IHHIHHI")
    _PREFIX: ClassVar[bytes] = _prefix(MessageType.NtLmNegotiate)
    HEADER_SIZE: ClassVar[int] = 32
    # MS-NLMP 2.2.1.1: where the fixed fields sit; the 16-byte form ends after NegotiateFlags.
    OFFSETS: ClassVar[Mapping[str, int]] = {"NegotiateFlags": 12, "Version": 32}
    PAYLOAD_FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (("DomainName", 16), ("Workstation", 24))

    def pack(self) -> bytes:
        version = self.version.pack() if self.version is not None else b""
        domain = encode_oem(self.domain)
        workstation = encode_oem(self.workstation)
        domain_at = self.HEADER_SIZE + len(version)
        ws_at = domain_at + len(domain)
        d, w = len(domain), len(workstation)
        body = self._BODY.pack(self.flags, d, d, domain_at, w, w, ws_at)
        return b"".join((self._PREFIX, body, version, domain, workstation))

    @classmethod
    def unpack(cls, data: bytes) -> NegotiateMessage:
        # MS-NLMP 2.2.1.1: some clients send only the first 16 bytes.
        _check_prefix(data, cls._PREFIX, 16)
        data = bytes(data)
        if len(data) < cls.HEADER_SIZE:
            return cls(_U32.unpack_from(data, 12)[0])
        fields = cls._BODY.unpack_from(data, 12)
        flags = fields[0]
        domain = _payload(data, fields[1], fields[3], "DomainName", 16)
        workstation = _payload(data, fields[4], fields[6], "Workstation", 24)
        version = None
        if flags & NTLMSSP_NEGOTIATE_VERSION and _lowest_offset(data, fields[1:]) >= 40:
            version = Version.unpack(data, 32)
        return cls(flags, decode_oem(domain), decode_oem(workstation), version)

    @classmethod
    def payload_fields(cls, data: bytes) -> tuple[PayloadField, ...]:
        """The (Len, MaxLen, BufferOffset) fields of a message that unpacks; none in the 16-byte form."""
        return _payload_fields(data, cls.PAYLOAD_FIELDS if len(data) >= cls.HEADER_SIZE else ())


def pack_challenge(
    flags: int,
    server_challenge: bytes,
    target_name: bytes,
    target_info: bytes,
    version: bytes,
    reserved: bytes = b"\x00" * 8,
) -> bytes:
    """MS-NLMP 2.2.1.2: a CHALLENGE_MESSAGE from its fields encoded (TargetName in the negotiated character
    set, TargetInfo as AvPair.pack_all gives it or b"" for none, VERSION or b""): what ChallengeMessage.pack
    writes, and what a server sends with the names it encoded once."""
    if len(server_challenge) != 8 or len(reserved) != 8:
        raise ValueError("ServerChallenge and Reserved are 8 bytes")
    name_at = ChallengeMessage.HEADER_SIZE + len(version)
    # MS-NLMP 4.2.3.3: an absent TargetInfo has a zero field.
    info_at = name_at + len(target_name) if target_info else 0
    n, i = len(target_name), len(target_info)
    body = _CHALLENGE_BODY.pack(n, n, name_at, flags, server_challenge, reserved, i, i, info_at)
    return b"".join((_CHALLENGE_PREFIX, body, version, target_name, target_info))


# TargetNameFields, NegotiateFlags, ServerChallenge, Reserved, TargetInfoFields after the prefix.
_CHALLENGE_BODY = struct.Struct("<HHII8s8sHHI")
_CHALLENGE_PREFIX = _prefix(MessageType.NtLmChallenge)


@quick_init
@dataclass(frozen=True)
class ChallengeMessage:
    """MS-NLMP 2.2.1.2: CHALLENGE_MESSAGE."""

    flags: int
    server_challenge: bytes
    target_name: str = ""
    target_info: tuple[AvPair, ...] | None = None
    version: Version | None = None
    reserved: bytes = b"\x00" * 8

    _BODY: ClassVar[struct.Struct] = _CHALLENGE_BODY
    _BODY_32: ClassVar[struct.Struct] = struct.Struct("<HHII8s")
    _PREFIX: ClassVar[bytes] = _CHALLENGE_PREFIX
    HEADER_SIZE: ClassVar[int] = 48
    # MS-NLMP 2.2.1.2: where the fixed fields sit; the 32-byte form ends after ServerChallenge.
    OFFSETS: ClassVar[Mapping[str, int]] = {
        "NegotiateFlags": 20,
        "ServerChallenge": 24,
        "Reserved": 32,
        "Version": 48,
    }
    PAYLOAD_FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (("TargetName", 12), ("TargetInfo", 40))

    def pack(self) -> bytes:
        return pack_challenge(
            self.flags,
            self.server_challenge,
            encode_string(self.target_name, self.flags),
            AvPair.pack_all(self.target_info) if self.target_info is not None else b"",
            self.version.pack() if self.version is not None else b"",
            self.reserved,
        )

    @classmethod
    def unpack(cls, data: bytes) -> ChallengeMessage:
        # MS-NLMP 2.2.1.2: TargetInfoFields were added later; accept the 32-byte form.
        data = bytes(data)
        _check_prefix(data, cls._PREFIX, 32)
        if len(data) < cls.HEADER_SIZE:
            name_len, _, name_at, flags, server_challenge = cls._BODY_32.unpack_from(data, 12)
            name_raw = _payload(data, name_len, name_at, "TargetName", 12)
            target_name = decode_string(name_raw, flags, "TargetName", offset=name_at)
            return cls(flags, server_challenge, target_name)
        fields = cls._BODY.unpack_from(data, 12)
        name_len, _, name_at, flags, server_challenge, reserved, info_len, _, info_at = fields
        name_raw = _payload(data, name_len, name_at, "TargetName", 12)
        target_name = decode_string(name_raw, flags, "TargetName", offset=name_at)
        target_info = None
        if info_len:
            info_raw = _payload(data, info_len, info_at, "TargetInfo", 40)
            try:
                target_info = AvPair.unpack_list(info_raw)[0]
            except MalformedMessage as exc:
                raise _inside(exc, info_at) from None
        version = None
        # MS-NLMP 2.2.1.2: VERSION is there when the payload starts after it.
        if (
            flags & NTLMSSP_NEGOTIATE_VERSION
            and len(data) >= 56
            and (not name_len or name_at >= 56)
            and (not info_len or info_at >= 56)
        ):
            version = _version(data[48:56])
        return cls(flags, server_challenge, target_name, target_info, version, reserved)

    @classmethod
    def payload_fields(cls, data: bytes) -> tuple[PayloadField, ...]:
        """The (Len, MaxLen, BufferOffset) fields of a message that unpacks; TargetName only in the 32-byte
        form."""
        full = len(data) >= cls.HEADER_SIZE
        return _payload_fields(data, cls.PAYLOAD_FIELDS if full else cls.PAYLOAD_FIELDS[:1])


@quick_init
@dataclass(frozen=True)
class AuthenticateMessage:
    """MS-NLMP 2.2.1.3: AUTHENTICATE_MESSAGE. A MIC implies a VERSION field before it."""

    flags: int
    lm_response: bytes = field(default=b"", repr=False)
    nt_response: bytes = field(default=b"", repr=False)
    domain: str = ""
    user: str = ""
    workstation: str = ""
    encrypted_random_session_key: bytes = field(default=b"", repr=False)
    version: Version | None = None
    mic: bytes | None = None

    # The six (Len, MaxLen, BufferOffset) fields in PAYLOAD_FIELDS' order, then NegotiateFlags.
    _BODY: ClassVar[struct.Struct] = struct.Struct("<" + "HHI" * 6 + "I")
    _PREFIX: ClassVar[bytes] = _prefix(MessageType.NtLmAuthenticate)
    HEADER_SIZE: ClassVar[int] = 64
    MIC_OFFSET: ClassVar[int] = 72
    # MS-NLMP 2.2.1.3: where the fixed fields sit.
    OFFSETS: ClassVar[Mapping[str, int]] = {"NegotiateFlags": 60, "Version": 64, "MIC": MIC_OFFSET}
    PAYLOAD_FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (
        ("LmChallengeResponse", 12),
        ("NtChallengeResponse", 20),
        ("DomainName", 28),
        ("UserName", 36),
        ("Workstation", 44),
        ("EncryptedRandomSessionKey", 52),
    )

    def __post_init__(self) -> None:
        if self.mic is not None and (self.version is None or len(self.mic) != 16):
            raise ValueError("a MIC is 16 bytes and needs the VERSION field before it")

    def pack(self) -> bytes:
        version = self.version.pack() if self.version is not None else b""
        mic = self.mic if self.mic is not None else b""
        flags = self.flags
        domain = encode_string(self.domain, flags)
        user = encode_string(self.user, flags)
        workstation = encode_string(self.workstation, flags)
        lm, nt, key = self.lm_response, self.nt_response, self.encrypted_random_session_key
        # MS-NLMP 4.2.4.3: payload order domain, user, workstation, LM, NT, session key.
        domain_at = self.HEADER_SIZE + len(version) + len(mic)
        user_at = domain_at + len(domain)
        ws_at = user_at + len(user)
        lm_at = ws_at + len(workstation)
        nt_at = lm_at + len(lm)
        key_at = nt_at + len(nt)
        body = self._BODY.pack(
            *(len(lm), len(lm), lm_at),
            *(len(nt), len(nt), nt_at),
            *(len(domain), len(domain), domain_at),
            *(len(user), len(user), user_at),
            *(len(workstation), len(workstation), ws_at),
            *(len(key), len(key), key_at),
            flags,
        )
        return b"".join((self._PREFIX, body, version, mic, domain, user, workstation, lm, nt, key))

    @classmethod
    def unpack(
        cls, data: bytes, negotiated: int | None = None, *, strict: bool = False
    ) -> AuthenticateMessage:
        """`negotiated`: the flags the CHALLENGE settled on, when known (a server knows them). `strict`: read
        the message as an acceptor does, as smbd does (Samba ntlmssp_server_preauth's msrpc_parse)."""
        data = bytes(data)
        _check_prefix(data, cls._PREFIX, cls.HEADER_SIZE)
        fields = cls._BODY.unpack_from(data, 12)
        if strict:
            _check_max_lengths(fields)
        lm_len, _, lm_at, nt_len, _, nt_at, domain_len, _, domain_at = fields[:9]
        user_len, _, user_at, ws_len, _, ws_at, key_len, key_max, key_at, flags = fields[9:]
        lm = data[lm_at : lm_at + lm_len]
        nt = data[nt_at : nt_at + nt_len]
        domain = data[domain_at : domain_at + domain_len]
        user = data[user_at : user_at + user_len]
        workstation = data[ws_at : ws_at + ws_len]
        lengths = (len(lm), len(nt), len(domain), len(user), len(workstation))
        if lengths != (lm_len, nt_len, domain_len, user_len, ws_len):
            # A slice comes up short only when its field runs past the end: name the first that does.
            for name, at in cls.PAYLOAD_FIELDS[:5]:
                length, _, offset = _FIELD.unpack_from(data, at)
                _payload(data, length, offset, name, at)
        if strict:
            # Samba msrpc_parse: a session key field that does not parse is read as no key, and then (its
            # shorter format "CdBBUUU") as no NegotiateFlags, no VERSION and no MIC: the flags stay those
            # the CHALLENGE negotiated; else VERSION and MIC sit at their fixed offsets, even where a
            # payload overlaps them (MS-NLMP 2.2.1.3 puts them there).
            if key_len != key_max or (key_len and key_at + key_len > len(data)):
                key, version, mic = b"", None, None
                flags = flags if negotiated is None else negotiated
            else:
                key = data[key_at : key_at + key_len] if key_len else b""
                version = _version(data[64:72]) if len(data) >= 88 else None
                mic = data[72:88] if len(data) >= 88 else None
        else:
            key = _payload(data, key_len, key_at, "EncryptedRandomSessionKey", 52)
            # MS-NLMP 2.2.1.3: VERSION and MIC are present when the payload leaves room for them.
            lowest = _lowest_offset(data, fields[:18])
            version = _version(data[64:72]) if lowest >= 72 and len(data) >= 72 else None
            mic = data[72:88] if lowest >= 88 and len(data) >= 88 else None
        # MS-NLMP 3.2.5.1.2: the strings are in the character set the CHALLENGE negotiated, not the one
        # these flags claim (wget claims UNICODE after OEM was agreed, and sends OEM)
        charset = flags if negotiated is None else negotiated
        return cls(
            flags,
            lm,
            nt,
            decode_string(domain, charset, "DomainName", offset=domain_at),
            decode_string(user, charset, "UserName", offset=user_at),
            decode_string(workstation, charset, "Workstation", offset=ws_at),
            key,
            version,
            mic,
        )

    @classmethod
    def payload_fields(cls, data: bytes) -> tuple[PayloadField, ...]:
        """The (Len, MaxLen, BufferOffset) fields of a message that unpacks."""
        return _payload_fields(data, cls.PAYLOAD_FIELDS)


def zero_mic(data: bytes) -> bytes:
    """The AUTHENTICATE bytes with the MIC field zeroed (MS-NLMP 3.1.5.1.2)."""
    return data[:72] + b"\x00" * 16 + data[88:]


@quick_init
@dataclass(frozen=True)
class NtlmV2ClientChallenge:
    """MS-NLMP 2.2.2.7: NTLMv2_CLIENT_CHALLENGE (the "blob").

    `trailer` keeps whatever follows the MsvAvEOL: Windows sends 4 zero bytes, Samba none.
    """

    timestamp: int
    challenge_from_client: bytes
    av_pairs: tuple[AvPair, ...] = ()
    resp_type: int = 1
    hi_resp_type: int = 1
    reserved1: int = 0
    reserved2: int = 0
    reserved3: int = 0
    trailer: bytes = b"\x00\x00\x00\x00"

    _HEAD: ClassVar[struct.Struct] = struct.Struct("<BBHIQ8sI")
    HEADER_SIZE: ClassVar[int] = 28
    # MS-NLMP 2.2.2.7: where the fields sit.
    OFFSETS: ClassVar[Mapping[str, int]] = {
        "RespType": 0,
        "HiRespType": 1,
        "Reserved1": 2,
        "Reserved2": 4,
        "TimeStamp": 8,
        "ChallengeFromClient": 16,
        "Reserved3": 24,
        "AvPairs": 28,
    }

    def pack(self) -> bytes:
        return (
            self._HEAD.pack(
                self.resp_type,
                self.hi_resp_type,
                self.reserved1,
                self.reserved2,
                self.timestamp,
                self.challenge_from_client,
                self.reserved3,
            )
            + AvPair.pack_all(self.av_pairs)
            + self.trailer
        )

    @classmethod
    def unpack(cls, data: bytes) -> NtlmV2ClientChallenge:
        if len(data) < cls.HEADER_SIZE + 4:
            raise _fail("NTLMv2_CLIENT_CHALLENGE too short", len(data))
        # MS-NLMP 2.2.2.7 has RespType and HiRespType 1; they are read unchecked, as Samba does: the
        # NTProofStr covers them (MS-NLMP 3.3.2), so a changed one is a response that does not verify.
        data = bytes(data)
        resp, hi, r1, r2, timestamp, cc, r3 = cls._HEAD.unpack_from(data)
        try:
            pairs, end = AvPair.unpack_list(data, cls.HEADER_SIZE)
        except MalformedMessage as exc:
            raise _inside(exc, cls.HEADER_SIZE) from None
        return cls(timestamp, cc, pairs, resp, hi, r1, r2, r3, data[end:])


@quick_init
@dataclass(frozen=True)
class NtlmV2Response:
    """MS-NLMP 2.2.2.8: NTLMv2_RESPONSE: NTProofStr and the blob exactly as received."""

    nt_proof_str: bytes
    blob: bytes

    @functools.cached_property
    def client_challenge(self) -> NtlmV2ClientChallenge:
        """The blob parsed (once: `unpack` checks it, the server then reads it)."""
        return NtlmV2ClientChallenge.unpack(self.blob)

    def pack(self) -> bytes:
        return self.nt_proof_str + self.blob

    @classmethod
    def unpack(cls, data: bytes) -> NtlmV2Response:
        if len(data) < 16 + NtlmV2ClientChallenge.HEADER_SIZE + 4:
            raise _fail("NTLMv2_RESPONSE too short", len(data))
        response = cls(bytes(data[:16]), bytes(data[16:]))
        try:
            # MS-NLMP 3.3.2: the blob must parse. Stored where the cached_property keeps it (its __get__
            # takes a lock on Python 3.11), so the server's read of it is a plain attribute.
            response.__dict__["client_challenge"] = NtlmV2ClientChallenge.unpack(response.blob)
        except MalformedMessage as exc:
            raise _inside(exc, 16) from None
        return response


@quick_init
@dataclass(frozen=True)
class LmV2Response:
    """MS-NLMP 2.2.2.4: LMv2_RESPONSE."""

    response: bytes
    challenge_from_client: bytes

    def pack(self) -> bytes:
        return self.response + self.challenge_from_client

    @classmethod
    def unpack(cls, data: bytes) -> LmV2Response:
        if len(data) != 24:
            raise _fail("LMv2_RESPONSE is 24 bytes", len(data))
        return cls(bytes(data[:16]), bytes(data[16:]))


def unix_to_filetime(seconds: float) -> int:
    """MS-DTYP 2.3.3: a FILETIME, 100-nanosecond intervals since 1601-01-01 UTC, from Unix seconds."""
    return int(seconds * 10_000_000) + 116444736000000000


def pack_filetime(filetime: int) -> bytes:
    return _U64.pack(filetime)


def unpack_filetime(data: bytes) -> int:
    if len(data) != 8:
        raise _fail("MsvAvTimestamp is 8 bytes", 0)
    return int(_U64.unpack(data)[0])


def unpack_u32(data: bytes, what: str) -> int:
    if len(data) != 4:
        raise _fail(f"{what} is 4 bytes", 0)
    return int(_U32.unpack(data)[0])


def pack_u32(value: int) -> bytes:
    return _U32.pack(value)
