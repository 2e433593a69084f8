"""NTLM wire codec (MS-NLMP 2.2): NEGOTIATE, CHALLENGE, AUTHENTICATE and their substructures.

Every parse failure raises `MalformedMessage`; every offset and length is checked before slicing.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final, NamedTuple

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


def decode_unicode(data: bytes, what: str = "string", *, offset: int | None = None) -> str:
    """UTF-16LE as on the wire; odd lengths are malformed, unpaired surrogates survive. `offset` is where
    `data` starts in the message, for the error."""
    if len(data) % 2:
        raise _fail(f"odd-length UTF-16 {what}", offset)
    return data.decode("utf-16-le", "surrogatepass")


def encode_unicode(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


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
    _check_prefix(data, MessageType.NtLmNegotiate, 16)
    return int(_U32.unpack_from(data, 12)[0])


def _check_prefix(data: bytes, expected: MessageType, minimum: int) -> None:
    kind = message_type(data)
    if kind != expected:
        raise _fail(f"expected {expected.name} (type {int(expected)}), got type {kind}", 8)
    if len(data) < minimum:
        reason = f"message is {len(data)} bytes, shorter than the {minimum}-byte {expected.name} header"
        raise _fail(reason, len(data))


def _read_field(data: bytes, at: int, name: str) -> tuple[bytes, int]:
    """Read a (Len, MaxLen, BufferOffset) field; returns the payload and its offset (0 when empty)."""
    length, _maxlen, offset = _FIELD.unpack_from(data, at)
    if length == 0:
        return b"", 0
    if offset + length > len(data):
        reason = f"{name} runs past the end (len {length} at {offset}, message is {len(data)} bytes)"
        raise _fail(reason, at)
    return bytes(data[offset : offset + length]), offset


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


@dataclass(frozen=True)
class AvPair:
    """MS-NLMP 2.2.2.1: one AV_PAIR. `id` is an AvId when known, the raw number otherwise."""

    id: int
    value: bytes

    _HEAD: ClassVar[struct.Struct] = struct.Struct("<HH")

    def pack(self) -> bytes:
        return self._HEAD.pack(self.id, len(self.value)) + self.value

    @classmethod
    def unpack_all(cls, data: bytes) -> tuple[AvPair, ...]:
        """Parse a list up to its MsvAvEOL (MS-NLMP 2.2.2.1); bytes after the EOL are not part of it."""
        return cls.unpack_list(data)[0]

    @classmethod
    def unpack_list(cls, data: bytes) -> tuple[tuple[AvPair, ...], int]:
        """Parse a list; returns the pairs (without the EOL) and the offset just past the EOL."""
        pairs: list[AvPair] = []
        pos = 0
        end = len(data)
        head = cls._HEAD
        while True:
            if pos + 4 > end:
                raise _fail("AV_PAIR list does not end with MsvAvEOL", pos)
            av_id, av_len = head.unpack_from(data, pos)
            pos += 4
            if pos + av_len > end:
                name = AvId(av_id).name if av_id in _AV_IDS else f"AvId {av_id}"
                raise _fail(f"AV_PAIR {name} value runs past the end of the list (len {av_len})", pos)
            if av_id == AvId.MsvAvEOL:
                if av_len:
                    raise _fail("MsvAvEOL with a non-zero length", pos - 4)
                return tuple(pairs), pos
            pairs.append(cls(_AV_IDS.get(av_id, av_id), bytes(data[pos : pos + av_len])))
            pos += av_len

    @classmethod
    def pack_all(cls, pairs: tuple[AvPair, ...] | list[AvPair]) -> bytes:
        """Encode pairs and the terminating MsvAvEOL (MS-NLMP 2.2.2.1)."""
        return b"".join(p.pack() for p in pairs if p.id != AvId.MsvAvEOL) + b"\x00\x00\x00\x00"


def av_get(pairs: tuple[AvPair, ...], av_id: AvId) -> bytes | None:
    for pair in pairs:
        if pair.id == av_id:
            return pair.value
    return None


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
        return self._S.pack(self.major, self.minor, self.build, self.reserved, self.revision)

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> Version:
        if offset + 8 > len(data):
            raise _fail("VERSION truncated", offset)
        major, minor, build, reserved, revision = cls._S.unpack_from(data, offset)
        return cls(major, minor, build, revision, reserved)


def _lowest_offset(data: bytes, field_positions: tuple[int, ...]) -> int:
    """The lowest payload offset of the non-empty fields; the message length when all are empty."""
    lowest = len(data)
    for at in field_positions:
        length, _maxlen, offset = _FIELD.unpack_from(data, at)
        if length and offset < lowest:
            lowest = offset
    return lowest


@dataclass(frozen=True)
class NegotiateMessage:
    """MS-NLMP 2.2.1.1: NEGOTIATE_MESSAGE. Domain and workstation are always OEM strings."""

    flags: int
    domain: str = ""
    workstation: str = ""
    version: Version | None = None

    _HEAD: ClassVar[struct.Struct] = struct.Struct("<8sII8s8s")
    HEADER_SIZE: ClassVar[int] = 32
    # MS-NLMP 2.2.1.1: where the fixed fields sit; the 16-byte form ends after NegotiateFlags.
    OFFSETS: ClassVar[Mapping[str, int]] = {"NegotiateFlags": 12, "Version": 32}
    PAYLOAD_FIELDS: ClassVar[tuple[tuple[str, int], ...]] = (("DomainName", 16), ("Workstation", 24))

    def pack(self) -> bytes:
        offset = self.HEADER_SIZE + (Version.SIZE if self.version is not None else 0)
        domain = encode_oem(self.domain)
        workstation = encode_oem(self.workstation)
        domain_field = _FIELD.pack(len(domain), len(domain), offset)
        offset += len(domain)
        ws_field = _FIELD.pack(len(workstation), len(workstation), offset)
        out = self._HEAD.pack(SIGNATURE, MessageType.NtLmNegotiate, self.flags, domain_field, ws_field)
        if self.version is not None:
            out += self.version.pack()
        return out + domain + workstation

    @classmethod
    def unpack(cls, data: bytes) -> NegotiateMessage:
        # MS-NLMP 2.2.1.1: some clients send only the first 16 bytes.
        _check_prefix(data, MessageType.NtLmNegotiate, 16)
        (flags,) = _U32.unpack_from(data, 12)
        if len(data) < cls.HEADER_SIZE:
            return cls(flags)
        domain, _ = _read_field(data, 16, "DomainName")
        workstation, _ = _read_field(data, 24, "Workstation")
        version = None
        if flags & NTLMSSP_NEGOTIATE_VERSION and _lowest_offset(data, (16, 24)) >= 40:
            version = Version.unpack(data, 32)
        return cls(flags, decode_oem(domain), decode_oem(workstation), version)

    @classmethod
    def payload_fields(cls, data: bytes) -> tuple[PayloadField, ...]:
        """The (Len, MaxLen, BufferOffset) fields of a message that unpacks; none in the 16-byte form."""
        return _payload_fields(data, cls.PAYLOAD_FIELDS if len(data) >= cls.HEADER_SIZE else ())


@dataclass(frozen=True)
class ChallengeMessage:
    """MS-NLMP 2.2.1.2: CHALLENGE_MESSAGE."""

    flags: int
    server_challenge: bytes
    target_name: str = ""
    target_info: tuple[AvPair, ...] | None = None
    version: Version | None = None
    reserved: bytes = b"\x00" * 8

    _HEAD: ClassVar[struct.Struct] = struct.Struct("<8sI8sI8s8s8s")
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
        if len(self.server_challenge) != 8 or len(self.reserved) != 8:
            raise ValueError("ServerChallenge and Reserved are 8 bytes")
        offset = self.HEADER_SIZE + (Version.SIZE if self.version is not None else 0)
        name = encode_string(self.target_name, self.flags)
        name_field = _FIELD.pack(len(name), len(name), offset)
        offset += len(name)
        info = AvPair.pack_all(self.target_info) if self.target_info is not None else b""
        # MS-NLMP 4.2.3.3: an absent TargetInfo has a zero field.
        info_field = _FIELD.pack(len(info), len(info), offset) if info else _FIELD.pack(0, 0, 0)
        out = self._HEAD.pack(
            SIGNATURE,
            MessageType.NtLmChallenge,
            name_field,
            self.flags,
            self.server_challenge,
            self.reserved,
            info_field,
        )
        if self.version is not None:
            out += self.version.pack()
        return out + name + info

    @classmethod
    def unpack(cls, data: bytes) -> ChallengeMessage:
        # MS-NLMP 2.2.1.2: TargetInfoFields were added later; accept the 32-byte form.
        _check_prefix(data, MessageType.NtLmChallenge, 32)
        (flags,) = _U32.unpack_from(data, 20)
        server_challenge = bytes(data[24:32])
        name_raw, name_at = _read_field(data, 12, "TargetName")
        target_name = decode_string(name_raw, flags, "TargetName", offset=name_at)
        if len(data) < cls.HEADER_SIZE:
            return cls(flags, server_challenge, target_name)
        reserved = bytes(data[32:40])
        info_raw, info_at = _read_field(data, 40, "TargetInfo")
        target_info = None
        if info_raw:
            try:
                target_info = AvPair.unpack_all(info_raw)
            except MalformedMessage as exc:
                raise _inside(exc, info_at) from None
        version = None
        if flags & NTLMSSP_NEGOTIATE_VERSION and _lowest_offset(data, (12, 40)) >= 56:
            version = Version.unpack(data, 48)
        return cls(flags, server_challenge, target_name, target_info, version, reserved)

    @classmethod
    def payload_fields(cls, data: bytes) -> tuple[PayloadField, ...]:
        """The (Len, MaxLen, BufferOffset) fields of a message that unpacks; TargetName only in the 32-byte
        form."""
        full = len(data) >= cls.HEADER_SIZE
        return _payload_fields(data, cls.PAYLOAD_FIELDS if full else cls.PAYLOAD_FIELDS[:1])


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

    _HEAD: ClassVar[struct.Struct] = struct.Struct("<8sI8s8s8s8s8s8sI")
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
    _FIELDS: ClassVar[tuple[int, ...]] = tuple(at for _, at in PAYLOAD_FIELDS)

    def __post_init__(self) -> None:
        if self.mic is not None and (self.version is None or len(self.mic) != 16):
            raise ValueError("a MIC is 16 bytes and needs the VERSION field before it")

    def pack(self) -> bytes:
        offset = self.HEADER_SIZE
        if self.version is not None:
            offset += Version.SIZE
        if self.mic is not None:
            offset += 16
        # MS-NLMP 4.2.4.3: payload order domain, user, workstation, LM, NT, session key.
        parts = (
            encode_string(self.domain, self.flags),
            encode_string(self.user, self.flags),
            encode_string(self.workstation, self.flags),
            self.lm_response,
            self.nt_response,
            self.encrypted_random_session_key,
        )
        fields = []
        for part in parts:
            fields.append(_FIELD.pack(len(part), len(part), offset))
            offset += len(part)
        out = self._HEAD.pack(
            SIGNATURE,
            MessageType.NtLmAuthenticate,
            fields[3],
            fields[4],
            fields[0],
            fields[1],
            fields[2],
            fields[5],
            self.flags,
        )
        if self.version is not None:
            out += self.version.pack()
        if self.mic is not None:
            out += self.mic
        return out + b"".join(parts)

    @classmethod
    def unpack(cls, data: bytes, *, charset: int | None = None) -> AuthenticateMessage:
        """`charset`: the flags whose UNICODE bit says how the strings decode, the message's own by default
        (an acceptor passes the CHALLENGE's: MS-NLMP 3.2.5.1.1, the server chose the character set)."""
        _check_prefix(data, MessageType.NtLmAuthenticate, cls.HEADER_SIZE)
        lm, _ = _read_field(data, 12, "LmChallengeResponse")
        nt, _ = _read_field(data, 20, "NtChallengeResponse")
        domain, domain_at = _read_field(data, 28, "DomainName")
        user, user_at = _read_field(data, 36, "UserName")
        workstation, workstation_at = _read_field(data, 44, "Workstation")
        key, _ = _read_field(data, 52, "EncryptedRandomSessionKey")
        (flags,) = _U32.unpack_from(data, 60)
        # MS-NLMP 2.2.1.3: VERSION and MIC are present when the payload leaves room for them.
        lowest = _lowest_offset(data, cls._FIELDS)
        version = Version.unpack(data, 64) if lowest >= 72 and len(data) >= 72 else None
        mic = bytes(data[72:88]) if lowest >= 88 and len(data) >= 88 else None
        strings = flags if charset is None else charset
        return cls(
            flags,
            lm,
            nt,
            decode_string(domain, strings, "DomainName", offset=domain_at),
            decode_string(user, strings, "UserName", offset=user_at),
            decode_string(workstation, strings, "Workstation", offset=workstation_at),
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
        resp, hi, r1, r2, timestamp, cc, r3 = cls._HEAD.unpack_from(data)
        if resp != 1 or hi != 1:
            raise _fail(f"NTLMv2_CLIENT_CHALLENGE RespType {resp}/{hi}, expected 1/1", 0)
        try:
            pairs, end = AvPair.unpack_list(data[cls.HEADER_SIZE :])
        except MalformedMessage as exc:
            raise _inside(exc, cls.HEADER_SIZE) from None
        return cls(timestamp, cc, pairs, resp, hi, r1, r2, r3, bytes(data[cls.HEADER_SIZE + end :]))


@dataclass(frozen=True)
class NtlmV2Response:
    """MS-NLMP 2.2.2.8: NTLMv2_RESPONSE: NTProofStr and the blob exactly as received."""

    nt_proof_str: bytes
    blob: bytes

    @property
    def client_challenge(self) -> NtlmV2ClientChallenge:
        return NtlmV2ClientChallenge.unpack(self.blob)

    def pack(self) -> bytes:
        return self.nt_proof_str + self.blob

    @classmethod
    def unpack(cls, data: bytes) -> NtlmV2Response:
        if len(data) < 16 + NtlmV2ClientChallenge.HEADER_SIZE + 4:
            raise _fail("NTLMv2_RESPONSE too short", len(data))
        response = cls(bytes(data[:16]), bytes(data[16:]))
        try:
            response.client_challenge  # noqa: B018 -- MS-NLMP 3.3.2: the blob must parse
        except MalformedMessage as exc:
            raise _inside(exc, 16) from None
        return response


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
