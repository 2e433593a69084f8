"""The SMB2 packet header (MS-SMB2 2.2.1), compounding (MS-SMB2 3.2.4.1.4), and the SMB1 header
(MS-SMB 2.2.3.1) just far enough to read the multi-protocol NEGOTIATE a client may open with."""

from __future__ import annotations

import enum
import functools
import struct
from dataclasses import dataclass, field
from typing import ClassVar, Final

from smb2auth._frozen import quick_init
from smb2auth.errors import MalformedMessage

SMB2_PROTOCOL_ID = b"\xfeSMB"
SMB1_PROTOCOL_ID = b"\xffSMB"
TRANSFORM_PROTOCOL_ID = b"\xfdSMB"
COMPRESSION_PROTOCOL_ID = b"\xfcSMB"
HEADER_SIZE = 64
SIGNATURE_OFFSET = 48
SIGNATURE_SIZE = 16
# MS-SMB2 2.2.1: ProtocolId, StructureSize, CreditCharge, Status, Command, Credit, Flags, NextCommand,
# MessageId, AsyncId (or Reserved and TreeId), SessionId, Signature; for hot paths packing it directly.
HEADER_STRUCT = struct.Struct("<4sHHIHHIIQQQ16s")


class Command(enum.IntEnum):
    """MS-SMB2 2.2.1.2: Command."""

    NEGOTIATE = 0x0000
    SESSION_SETUP = 0x0001
    LOGOFF = 0x0002
    TREE_CONNECT = 0x0003
    TREE_DISCONNECT = 0x0004
    CREATE = 0x0005
    CLOSE = 0x0006
    FLUSH = 0x0007
    READ = 0x0008
    WRITE = 0x0009
    LOCK = 0x000A
    IOCTL = 0x000B
    CANCEL = 0x000C
    ECHO = 0x000D
    QUERY_DIRECTORY = 0x000E
    CHANGE_NOTIFY = 0x000F
    QUERY_INFO = 0x0010
    SET_INFO = 0x0011
    OPLOCK_BREAK = 0x0012


class HeaderFlags(enum.IntFlag):
    """MS-SMB2 2.2.1.2: Flags (SMB2_FLAGS_*)."""

    SERVER_TO_REDIR = 0x00000001
    ASYNC_COMMAND = 0x00000002
    RELATED_OPERATIONS = 0x00000004
    SIGNED = 0x00000008
    PRIORITY_MASK = 0x00000070
    DFS_OPERATIONS = 0x10000000
    REPLAY_OPERATION = 0x20000000


# The flags a header's properties test, as plain ints (IntFlag & IntFlag dispatches into Python).
_SERVER_TO_REDIR: Final = int(HeaderFlags.SERVER_TO_REDIR)
_ASYNC_COMMAND: Final = int(HeaderFlags.ASYNC_COMMAND)
_SIGNED: Final = int(HeaderFlags.SIGNED)
# Command and Flags from their wire values without the enum's Python-level call (hot path).
_COMMANDS: Final = {int(command): command for command in Command}
_header_flags: Final = functools.lru_cache(maxsize=64)(HeaderFlags)


@quick_init
@dataclass(frozen=True)
class Smb2Header:
    """The 64-byte SMB2 header, sync form (reserved + tree_id) or async form (async_id).

    `status` is the NTSTATUS of a response; in a 3.x request its low 16 bits are the ChannelSequence.
    `credit` is CreditRequest in a request and CreditResponse in a response.
    """

    command: Command
    flags: HeaderFlags = HeaderFlags(0)
    message_id: int = 0
    session_id: int = 0
    tree_id: int = 0
    async_id: int = 0
    credit_charge: int = 0
    credit: int = 0
    status: int = 0
    next_command: int = 0
    reserved: int = 0
    signature: bytes = bytes(SIGNATURE_SIZE)

    _STRUCT: ClassVar[struct.Struct] = HEADER_STRUCT

    def __post_init__(self) -> None:
        if len(self.signature) != SIGNATURE_SIZE:
            raise ValueError("signature must be 16 bytes")
        if self.is_async and (self.tree_id or self.reserved):
            raise ValueError("an async header has no tree_id or reserved field")
        if not self.is_async and self.async_id:
            raise ValueError("a sync header has no async_id")

    @property
    def is_async(self) -> bool:
        return bool(int(self.flags) & _ASYNC_COMMAND)

    @property
    def is_response(self) -> bool:
        return bool(int(self.flags) & _SERVER_TO_REDIR)

    @property
    def is_signed(self) -> bool:
        return bool(int(self.flags) & _SIGNED)

    @property
    def channel_sequence(self) -> int:
        """MS-SMB2 2.2.1.2: ChannelSequence, the low 16 bits of the Status field of a 3.x request."""
        return self.status & 0xFFFF

    def pack(self) -> bytes:
        middle = self.async_id if self.is_async else (self.tree_id << 32) | self.reserved
        return self._STRUCT.pack(
            SMB2_PROTOCOL_ID,
            HEADER_SIZE,
            self.credit_charge,
            self.status,
            self.command,
            self.credit,
            self.flags,
            self.next_command,
            self.message_id,
            middle,
            self.session_id,
            self.signature,
        )

    @classmethod
    def unpack(cls, data: bytes) -> Smb2Header:
        if len(data) < HEADER_SIZE:
            raise MalformedMessage(f"SMB2 header needs 64 bytes, got {len(data)}")
        (
            protocol,
            size,
            charge,
            status,
            command,
            credit,
            flags,
            next_command,
            message_id,
            middle,
            session_id,
            signature,
        ) = cls._STRUCT.unpack_from(data)
        if protocol != SMB2_PROTOCOL_ID:
            raise MalformedMessage("not an SMB2 message (ProtocolId)", offset=0)
        if size != HEADER_SIZE:
            # MS-SMB2 2.2.1.1: StructureSize MUST be 64.
            raise MalformedMessage(f"SMB2 header StructureSize {size} is not 64", offset=4)
        cmd = _COMMANDS.get(command)
        if cmd is None:
            # MS-SMB2 3.3.5.2: an unknown command is answered STATUS_INVALID_PARAMETER.
            raise MalformedMessage(f"unknown SMB2 command 0x{command:04x}", offset=12)
        is_async = flags & _ASYNC_COMMAND
        # Hot path (every message, both peers): the fields go straight into the frozen instance, without
        # __init__ and __post_init__, whose checks (a 16-byte signature, no tree_id or reserved in an async
        # header, no async_id in a sync one) hold by construction here.
        header = object.__new__(cls)
        header.__dict__.update(
            command=cmd,
            flags=_header_flags(flags),
            message_id=message_id,
            session_id=session_id,
            tree_id=0 if is_async else middle >> 32,
            async_id=middle if is_async else 0,
            credit_charge=charge,
            credit=credit,
            status=status,
            next_command=next_command,
            reserved=0 if is_async else middle & 0xFFFFFFFF,
            signature=signature,
        )
        return header


@dataclass(frozen=True)
class CompoundPart:
    """One message of a (possibly compounded) SMB2 packet: `raw` is exactly what its signature covers
    (MS-SMB2 3.1.4.1: up to NextCommand, padding included), `body` is `raw` after the header."""

    header: Smb2Header
    body: bytes = field(repr=False)
    raw: bytes = field(repr=False)


def split_compound(data: bytes) -> list[CompoundPart]:
    """Split an SMB2 packet into its compounded messages by following NextCommand."""
    parts: list[CompoundPart] = []
    offset = 0
    while True:
        try:
            header = Smb2Header.unpack(data[offset:])
        except MalformedMessage as exc:
            raise MalformedMessage(exc.reason, offset=offset + (exc.offset or 0), status=exc.status) from None
        if header.next_command == 0:
            raw = data[offset:]
        else:
            # MS-SMB2 3.3.5.2.7: NextCommand is 8-byte aligned and points past this header, inside the packet.
            if header.next_command % 8 or header.next_command < HEADER_SIZE:
                raise MalformedMessage(
                    "NextCommand is not 8-byte aligned or is too small", offset=offset + 20
                )
            if offset + header.next_command + HEADER_SIZE > len(data):
                raise MalformedMessage("NextCommand points past the end of the packet", offset=offset + 20)
            raw = data[offset : offset + header.next_command]
        parts.append(CompoundPart(header, raw[HEADER_SIZE:], raw))
        if header.next_command == 0:
            return parts
        offset += header.next_command


def join_compound(messages: list[bytes]) -> bytes:
    """Compound whole messages (header + body each): pad each but the last to 8 bytes and set NextCommand."""
    out = bytearray()
    for i, message in enumerate(messages):
        if message[:4] != SMB2_PROTOCOL_ID or len(message) < HEADER_SIZE:
            raise ValueError("join_compound takes whole SMB2 messages")
        last = i == len(messages) - 1
        padded = message if last else message + bytes(-len(message) % 8)
        next_command = 0 if last else len(padded)
        out += padded[:20] + next_command.to_bytes(4, "little") + padded[24:]
    return bytes(out)


class Smb1Flags2(enum.IntFlag):
    """MS-CIFS 2.2.3.1: Flags2 (SMB_FLAGS2_*), the bits an SMB1 NEGOTIATE carries."""

    LONG_NAMES = 0x0001
    EAS = 0x0002
    SMB_SECURITY_SIGNATURE = 0x0004
    IS_LONG_NAME = 0x0040
    EXTENDED_SECURITY = 0x0800
    DFS = 0x1000
    PAGING_IO = 0x2000
    NT_STATUS = 0x4000
    UNICODE = 0x8000


@quick_init
@dataclass(frozen=True)
class Smb1Header:
    """MS-SMB 2.2.3.1: the 32-byte SMB1 header."""

    command: int
    status: int = 0
    flags: int = 0
    flags2: Smb1Flags2 = Smb1Flags2(0)
    pid_high: int = 0
    security_features: bytes = bytes(8)
    reserved: int = 0
    tid: int = 0
    pid_low: int = 0
    uid: int = 0
    mid: int = 0

    SMB_COM_NEGOTIATE: ClassVar[int] = 0x72
    SIZE: ClassVar[int] = 32
    _STRUCT: ClassVar[struct.Struct] = struct.Struct("<4sBIBHH8sHHHHH")

    def pack(self) -> bytes:
        return self._STRUCT.pack(
            SMB1_PROTOCOL_ID,
            self.command,
            self.status,
            self.flags,
            self.flags2,
            self.pid_high,
            self.security_features,
            self.reserved,
            self.tid,
            self.pid_low,
            self.uid,
            self.mid,
        )

    @classmethod
    def unpack(cls, data: bytes) -> Smb1Header:
        if len(data) < cls.SIZE:
            raise MalformedMessage(f"SMB1 header needs 32 bytes, got {len(data)}")
        (protocol, command, status, flags, flags2, pid_high, features, reserved, tid, pid_low, uid, mid) = (
            cls._STRUCT.unpack_from(data)
        )
        if protocol != SMB1_PROTOCOL_ID:
            raise MalformedMessage("not an SMB1 message (Protocol)", offset=0)
        return cls(
            command, status, flags, Smb1Flags2(flags2), pid_high, features, reserved, tid, pid_low, uid, mid
        )
