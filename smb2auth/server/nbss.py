"""The session packets a server reads on its TCP port, as smbd reads them (RFC 1002 4.3, MS-SMB2 2.1).

Every packet is a type octet, a 24-bit length and that many octets. A SESSION MESSAGE (type 0) carries an SMB
message. Before the first one a client may send a SESSION REQUEST (0x81), answered with a POSITIVE (0x82) or
NEGATIVE (0x83) SESSION RESPONSE; any other type there ends the connection (Samba smbd_server_connection_read
_handler: "Invalid message type for initial request"). After it, packets of any other type are read and
ignored (Samba smbd_smb2_request_next_incoming: "ignore NBT msg"), keepalives (0x85) among them.

`SessionReader.feed` never raises: what it cannot read ends its list as a `FramingError`, after the packets
before it, so that those are answered before the connection closes. A packet longer than `max_size` is not
held but counted off as it comes (smbd waits for all of a packet up to 16 MiB; so do we, without keeping it),
then ignored if of a type that is, else the end.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FramingError", "Incoming", "SessionReader", "SessionRequest", "session_response"]

SESSION_MESSAGE = 0x00
SESSION_REQUEST = 0x81
POSITIVE_RESPONSE = 0x82
NEGATIVE_RESPONSE = 0x83
CALLED_NAME_NOT_PRESENT = 0x82


@dataclass(frozen=True)
class SessionRequest:
    """RFC 1002 4.3.2: the called and the calling name, as they came."""

    names: bytes


@dataclass(frozen=True)
class FramingError:
    """Input that is no session packet: the connection ends here."""

    reason: str


Incoming = bytes | SessionRequest | FramingError
"""What the reader hands on: an SMB message's bytes, a session request to answer, or the end."""


def _name(data: bytes, pos: int) -> tuple[int, int] | None:
    """RFC 1002 4.1 / 14.1: a first-level encoded NetBIOS name at `pos` (32 half-ASCII octets, then scope
    labels up to a zero octet): (its NetBIOS suffix, the position after it), or None when it is not one."""
    if pos >= len(data) or data[pos] != 0x20 or pos + 33 > len(data):
        return None
    encoded = data[pos + 1 : pos + 33]
    if any(not 0x41 <= c <= 0x50 for c in encoded):
        return None
    suffix = ((encoded[30] - 0x41) << 4) | (encoded[31] - 0x41)
    pos += 33
    while pos < len(data) and data[pos]:
        pos += 1 + data[pos]
    if pos >= len(data):
        return None
    return suffix, pos + 1


def session_response(request: SessionRequest) -> bytes:
    """RFC 1002 4.3.3 / 4.3.4, as Samba reply_special answers: POSITIVE unless a name does not decode or the
    calling name is a Pathworks one (suffix 'R'), which gets NEGATIVE, called name not present."""
    called = _name(request.names, 0)
    calling = _name(request.names, called[1]) if called is not None else None
    if calling is None or calling[0] == ord("R"):
        return bytes((NEGATIVE_RESPONSE, 0, 0, 1, CALLED_NAME_NOT_PRESENT))
    return bytes((POSITIVE_RESPONSE, 0, 0, 0))


class SessionReader:
    """Sans-IO reassembly of session packets; holds at most one incomplete packet of `max_size` octets."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = bytearray()
        self._offset = 0  # stream offset of the buffer's first octet, for error reports
        self._messages = False  # a SESSION MESSAGE came: other types are ignored from now on
        self._requested = False
        self._broken = False
        self._skipping = 0  # octets still to come of an oversized packet, not kept
        self._skipped_kind = SESSION_MESSAGE

    @property
    def pending(self) -> int:
        """Octets received but not yet handed on."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Incoming]:
        if self._broken:
            return []
        out: list[Incoming] = []
        if self._skipping:
            taken = min(self._skipping, len(data))
            self._skipping -= taken
            self._offset += taken
            data = data[taken:]
            if self._skipping:
                return out
            if self._skipped_kind == SESSION_MESSAGE:
                return self._fail(out, f"a message over the limit of {self.max_size} bytes")
        self._buffer += data
        while len(self._buffer) >= 4:
            kind = self._buffer[0]
            size = int.from_bytes(self._buffer[1:4], "big")
            if kind != SESSION_MESSAGE and not self._messages:
                if kind != SESSION_REQUEST:
                    return self._fail(out, f"session packet type 0x{kind:02x} before the first message")
                if self._requested:
                    # Samba reply_special: "multiple session request not permitted".
                    return self._fail(out, "a second session request")
            if size > self.max_size:
                self._skipping, self._skipped_kind = size, kind
                rest = bytes(self._buffer[4:])
                self._buffer.clear()
                self._offset += 4
                return out + self.feed(rest)
            if len(self._buffer) < 4 + size:
                break
            payload = bytes(self._buffer[4 : 4 + size])
            del self._buffer[: 4 + size]
            self._offset += 4 + size
            if kind == SESSION_MESSAGE:
                self._messages = True
                out.append(payload)
            elif not self._messages:
                self._requested = True
                out.append(SessionRequest(payload))
        return out

    def _fail(self, out: list[Incoming], reason: str) -> list[Incoming]:
        self._broken = True
        out.append(FramingError(f"{reason} at offset {self._offset}"))
        self._buffer.clear()
        return out
