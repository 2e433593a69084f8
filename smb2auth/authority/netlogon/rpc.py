"""One DCE/RPC association over a byte stream (ncacn_ip_tcp, MS-RPCE 2.1.1.1, or a named pipe, 2.1.1.2):
bind, then calls one at a time, each request signed and sealed by the Netlogon SSP when the bind asked for
it. Callers bound its time."""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

from smb2auth.authority.netlogon import pdu as P
from smb2auth.authority.netlogon.schannel import (
    SIGNATURE_SIZE,
    SchannelContext,
    check_nl_auth_response,
    nl_auth_negotiate,
)
from smb2auth.errors import MalformedMessage

AUTH_CONTEXT_ID = 1
AUTH_PAD = 16  # MS-RPCE 2.2.2.11: the stub is padded so that the sec_trailer is aligned (Samba pads to 16)
MAX_RESPONSE = 1 << 20


class RpcError(Exception):
    """The RPC layer refused: a bind_nak, a fault, or a PDU that does not fit the call."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PduStream(Protocol):
    """What an association runs over: PDUs out, whole PDUs in."""

    async def send(self, frame: bytes) -> None: ...

    async def receive(self) -> bytes: ...

    def close(self) -> None: ...

    @property
    def closed(self) -> bool: ...


class TcpStream:
    """ncacn_ip_tcp: PDUs back to back on a TCP connection, each delimited by its frag_length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send(self, frame: bytes) -> None:
        self._writer.write(frame)
        await self._writer.drain()

    async def receive(self) -> bytes:
        header = await self._reader.readexactly(P.HEADER_SIZE)
        length = P.fragment_length(header)
        return header + await self._reader.readexactly(length - P.HEADER_SIZE)

    def close(self) -> None:
        self._writer.close()

    @property
    def closed(self) -> bool:
        return self._writer.is_closing()


class RpcConnection:
    def __init__(self, stream: PduStream) -> None:
        self._stream = stream
        self._call_id = 1
        self._security: SchannelContext | None = None
        self.max_xmit = P.MAX_FRAGMENT

    @classmethod
    async def open(cls, host: str, port: int) -> RpcConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(TcpStream(reader, writer))

    def close(self) -> None:
        self._stream.close()

    @property
    def closed(self) -> bool:
        return self._stream.closed

    async def _send(self, frame: bytes) -> None:
        await self._stream.send(frame)

    async def _receive(self) -> P.Pdu:
        return P.Pdu.unpack(await self._stream.receive())

    def _next_call(self) -> int:
        call_id = self._call_id
        self._call_id += 1
        return call_id

    async def bind(
        self, interface: tuple[uuid.UUID, int, int], schannel: SchannelContext | None = None,
        domain: str = "", computer: str = "",
    ) -> None:
        """C706 12.6.4.3 bind; with `schannel`, the Netlogon SSP at PKT_PRIVACY (or PKT_INTEGRITY)."""
        auth = None
        if schannel is not None:
            level = P.AuthLevel.PKT_PRIVACY if schannel.seal else P.AuthLevel.PKT_INTEGRITY
            auth = P.AuthVerifier(P.RPC_C_AUTHN_NETLOGON, level, 0, AUTH_CONTEXT_ID,
                                  nl_auth_negotiate(domain, computer))
        call_id = self._next_call()
        await self._send(P.bind(call_id, interface, auth).pack())
        reply = await self._receive()
        if reply.ptype == P.PacketType.BIND_NAK:
            raise RpcError(f"bind_nak, reason {P.bind_nak_reason(reply)}")
        if reply.ptype != P.PacketType.BIND_ACK or reply.call_id != call_id:
            raise RpcError(f"{reply.ptype.name} (call {reply.call_id}) in answer to bind {call_id}")
        ack = P.BindAck.parse(reply)
        if not ack.results or ack.results[0][0] != 0:
            raise RpcError(f"presentation context refused: {ack.results}")
        if schannel is not None:
            if ack.auth is None or ack.auth.auth_type != P.RPC_C_AUTHN_NETLOGON:
                raise RpcError("bind_ack without a Netlogon auth verifier")
            check_nl_auth_response(ack.auth.value)
        self.max_xmit = min(ack.max_recv, P.MAX_FRAGMENT)
        self._security = schannel

    async def call(self, opnum: int, stub: bytes) -> bytes:
        """One request and its (possibly fragmented) response; -> the response stub."""
        call_id = self._next_call()
        security = self._security
        auth = None
        if security is not None:
            pad = -len(stub) % AUTH_PAD
            body, token = security.wrap(stub + b"\x00" * pad)
            level = P.AuthLevel.PKT_PRIVACY if security.seal else P.AuthLevel.PKT_INTEGRITY
            auth = P.AuthVerifier(P.RPC_C_AUTHN_NETLOGON, level, pad, AUTH_CONTEXT_ID, token)
            frame = P.request(call_id, opnum, body, auth, alloc_hint=len(stub))
        else:
            frame = P.request(call_id, opnum, stub)
        data = frame.pack()
        if len(data) > self.max_xmit:
            raise RpcError(f"request of {len(data)} bytes over the fragment size {self.max_xmit}")
        await self._send(data)
        out = bytearray()
        while True:
            reply = await self._receive()
            if reply.call_id != call_id:
                raise RpcError(f"answer to call {reply.call_id} while waiting for {call_id}")
            if reply.ptype == P.PacketType.FAULT:
                status = P.fault_status(reply)
                raise RpcError(f"fault 0x{status:08X}", status)
            if reply.ptype != P.PacketType.RESPONSE:
                raise RpcError(f"{reply.ptype.name} in answer to a request")
            fragment = P.response_stub(reply)
            if security is not None:
                if reply.auth is None or len(reply.auth.value) < SIGNATURE_SIZE - 24:
                    raise RpcError("response without its Netlogon signature")
                fragment = security.unwrap(fragment, reply.auth.value)
                if reply.auth.pad_length > len(fragment):
                    raise MalformedMessage("auth padding longer than the stub", offset=P.HEADER_SIZE)
                fragment = fragment[:len(fragment) - reply.auth.pad_length]
            out += fragment
            if len(out) > MAX_RESPONSE:
                raise RpcError("response over 1 MiB")
            if reply.flags & P.PfcFlags.PFC_LAST_FRAG:
                return bytes(out)
