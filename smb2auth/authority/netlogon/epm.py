"""The endpoint mapper's ept_map (C706 appendix L/O, MS-RPCE 2.2.1.2.5 / 3.1.1.5.1.1): where an
interface listens over ncacn_ip_tcp."""

from __future__ import annotations

import socket
import struct
import uuid

from smb2auth.authority.netlogon.ndr import NdrReader, NdrWriter
from smb2auth.authority.netlogon.pdu import NDR_SYNTAX
from smb2auth.errors import MalformedMessage

EPM_INTERFACE = (uuid.UUID("e1af8308-5d1f-11c9-91a4-08002b14a0fa"), 3, 0)
EPM_PORT = 135
EPT_MAP = 3
EPT_S_NOT_REGISTERED = 0x16C9A0D6
_PROTOCOL_UUID = 0x0D
_PROTOCOL_RPC_CO = 0x0B
_PROTOCOL_TCP = 0x07
_PROTOCOL_IP = 0x09
MAX_TOWERS = 4


def _floor(lhs: bytes, rhs: bytes) -> bytes:
    return struct.pack("<H", len(lhs)) + lhs + struct.pack("<H", len(rhs)) + rhs


def tcp_tower(interface: tuple[uuid.UUID, int, int], port: int = 0, address: str = "0.0.0.0") -> bytes:
    """C706 appendix L: interface, transfer syntax, connection-oriented RPC, TCP port, IPv4 address;
    floor fields little-endian, the port and address in network order."""
    iface, major, minor = interface
    syntax, s_major, s_minor = NDR_SYNTAX
    floors = [
        _floor(bytes([_PROTOCOL_UUID]) + iface.bytes_le + struct.pack("<H", major), struct.pack("<H", minor)),
        _floor(bytes([_PROTOCOL_UUID]) + syntax.bytes_le + struct.pack("<H", s_major),
               struct.pack("<H", s_minor)),
        _floor(bytes([_PROTOCOL_RPC_CO]), struct.pack("<H", 0)),
        _floor(bytes([_PROTOCOL_TCP]), struct.pack(">H", port)),
        _floor(bytes([_PROTOCOL_IP]), socket.inet_aton(address)),
    ]
    return struct.pack("<H", len(floors)) + b"".join(floors)


def tower_floors(tower: bytes) -> list[tuple[bytes, bytes]]:
    """C706 appendix L: the (lhs, rhs) of each floor."""
    if len(tower) < 2:
        raise MalformedMessage("tower without a floor count", offset=0)
    (count,) = struct.unpack_from("<H", tower)
    pos, floors = 2, []
    for _ in range(count):
        parts = []
        for _side in range(2):
            if pos + 2 > len(tower):
                raise MalformedMessage("tower ends inside a floor", offset=pos)
            (length,) = struct.unpack_from("<H", tower, pos)
            if pos + 2 + length > len(tower):
                raise MalformedMessage("tower floor longer than the tower", offset=pos)
            parts.append(tower[pos + 2:pos + 2 + length])
            pos += 2 + length
        floors.append((parts[0], parts[1]))
    return floors


def tower_tcp_port(tower: bytes) -> int | None:
    for lhs, rhs in tower_floors(tower):
        if lhs == bytes([_PROTOCOL_TCP]) and len(rhs) == 2:
            return int(struct.unpack(">H", rhs)[0])
    return None


def ept_map_request(interface: tuple[uuid.UUID, int, int]) -> bytes:
    """ept_map(obj = NULL, map_tower, entry_handle = 0, max_towers) (C706 O.2, opnum 3)."""
    tower = tcp_tower(interface)
    w = NdrWriter()
    w.referent(False)
    w.referent(True)
    w.u32(len(tower))  # twr_t is a conformant structure: its size_is comes first
    w.u32(len(tower))
    w.raw(tower)
    w.align(4)
    w.raw(b"\x00" * 20)
    w.u32(MAX_TOWERS)
    return w.getvalue()


def ept_map_response(stub: bytes) -> tuple[int, list[bytes]]:
    """-> (status, towers)."""
    r = NdrReader(stub)
    r.take(20)
    num = r.count(MAX_TOWERS)
    max_count = r.count(MAX_TOWERS)
    actual = r.varying_header(max_count)
    if actual != num:
        raise MalformedMessage(f"ept_map: {actual} towers, num_towers says {num}", offset=r.pos)
    present = [r.u32() != 0 for _ in range(actual)]
    towers = []
    for ref in present:
        if ref:
            size = r.count(0x1000)
            length = r.u32()
            if length != size:
                raise MalformedMessage(f"twr_t length {length} conformance {size}", offset=r.pos)
            towers.append(r.take(length))
    status = r.u32()
    return status, towers
