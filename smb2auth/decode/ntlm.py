"""NTLMSSP messages (MS-NLMP 2.2) as trees, rendered from the codec's objects: NegotiateMessage,
ChallengeMessage, AuthenticateMessage, AvPair, NtlmV2Response, LmV2Response, SingleHostData. Where each field
lies comes from the codec too (its OFFSETS and payload_fields)."""

from __future__ import annotations

from smb2auth.decode.tree import DecodeError, Node, add_flags, filetime, flag_list, hexed
from smb2auth.errors import MalformedMessage
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.ntlm.messages import (
    AuthenticateMessage,
    AvFlags,
    AvId,
    AvPair,
    ChallengeMessage,
    LmV2Response,
    MessageType,
    NegotiateFlags,
    NegotiateMessage,
    NtlmV2ClientChallenge,
    NtlmV2Response,
    PayloadField,
    SingleHostData,
    Version,
    av_get,
    decode_unicode,
    message_type,
    unpack_filetime,
    unpack_u32,
)
from smb2auth.ntlm.server import classify_response

_KINDS: dict[int, str] = {
    MessageType.NtLmNegotiate: "NEGOTIATE",
    MessageType.NtLmChallenge: "CHALLENGE",
    MessageType.NtLmAuthenticate: "AUTHENTICATE",
}
# MS-NLMP 2.2.2.1: the AV_PAIRs whose value is a UTF-16LE name.
_NAMES = (
    AvId.MsvAvNbComputerName,
    AvId.MsvAvNbDomainName,
    AvId.MsvAvDnsComputerName,
    AvId.MsvAvDnsDomainName,
    AvId.MsvAvDnsTreeName,
    AvId.MsvAvTargetName,
)


def decode_ntlm(data: bytes, base: int = 0) -> Node:
    """The tree of one NTLM message; `base` is where it starts in the whole input."""
    data = bytes(data)
    try:
        kind = message_type(data)
    except MalformedMessage as exc:
        raise DecodeError.from_codec("NTLMSSP", exc, base) from None
    name = _KINDS.get(kind)
    if name is None:
        raise DecodeError("NTLMSSP", f"unknown MessageType {kind}", base + 8)
    what = f"NTLMSSP {name}"
    root = Node(what, note=f"{len(data)} bytes", offset=base)
    root.add("Signature", "NTLMSSP\\0", offset=base)
    root.add("MessageType", f"{kind} ({MessageType(kind).name})", offset=base + 8)
    try:
        if kind == MessageType.NtLmNegotiate:
            negotiate = NegotiateMessage.unpack(data)
            _Render(root, data, base, NegotiateMessage.payload_fields(data)).negotiate(negotiate)
        elif kind == MessageType.NtLmChallenge:
            challenge = ChallengeMessage.unpack(data)
            _Render(root, data, base, ChallengeMessage.payload_fields(data)).challenge(challenge)
        else:
            authenticate = AuthenticateMessage.unpack(data)
            _Render(root, data, base, AuthenticateMessage.payload_fields(data)).authenticate(authenticate)
    except MalformedMessage as exc:
        raise DecodeError.from_codec(what, exc, base) from None
    return root


class _Render:
    """Adds the nodes of one message that unpacked to `root`; `base` is where the message starts."""

    def __init__(self, root: Node, data: bytes, base: int, fields: tuple[PayloadField, ...]) -> None:
        self.root = root
        self.data = data
        self.base = base
        self.fields = {f.name: f for f in fields}

    def field(self, name: str) -> PayloadField:
        """MS-NLMP 2.2.1: a (Len, MaxLen, BufferOffset) field, as a node of its own."""
        f = self.fields[name]
        note = f"len {f.length}, maxlen {f.max_length}, at {f.offset}" if f.length else "empty"
        self.root.add(f"{name}Fields", note=note, offset=self.base + f.at)
        return f

    def at(self, f: PayloadField) -> int | None:
        """Where the payload of `f` lies in the whole input; None when it is empty."""
        return self.base + f.offset if f.length else None

    def flags(self, flags: int, at: int) -> None:
        add_flags(self.root, "NegotiateFlags", flags, NegotiateFlags, 4, self.base + at)

    def version(self, version: Version | None, at: int) -> None:
        if version is not None:
            text = f"{version.major}.{version.minor} build {version.build}, NTLM revision {version.revision}"
            self.root.add("Version", text, offset=self.base + at)

    def string(self, name: str, text: str, flags: int | None) -> None:
        f = self.fields[name]
        if not f.length:
            self.root.add(name, "''")
            return
        # MS-NLMP 2.2.2.5: UNICODE wins over OEM; NEGOTIATE strings are always OEM (2.2.1.1).
        unicode = flags is not None and flags & NegotiateFlags.NTLMSSP_NEGOTIATE_UNICODE
        note = "OEM" if not unicode else ", ".join(n for n in ("Unicode", _surrogate(text)) if n)
        self.root.add(name, repr(text), note, self.at(f))

    def negotiate(self, message: NegotiateMessage) -> None:
        self.flags(message.flags, NegotiateMessage.OFFSETS["NegotiateFlags"])
        if not self.fields:
            self.root.add("DomainNameFields", note="absent (16-byte NEGOTIATE, MS-NLMP 2.2.1.1)")
            return
        self.field("DomainName")
        self.field("Workstation")
        self.version(message.version, NegotiateMessage.OFFSETS["Version"])
        self.string("DomainName", message.domain, None)
        self.string("Workstation", message.workstation, None)

    def challenge(self, message: ChallengeMessage) -> None:
        offsets = ChallengeMessage.OFFSETS
        self.field("TargetName")
        self.flags(message.flags, offsets["NegotiateFlags"])
        challenge = hexed(message.server_challenge)
        self.root.add("ServerChallenge", challenge, offset=self.base + offsets["ServerChallenge"])
        if "TargetInfo" not in self.fields:
            self.string("TargetName", message.target_name, message.flags)
            self.root.add("TargetInfoFields", note="absent (32-byte CHALLENGE, MS-NLMP 2.2.1.2)")
            return
        self.root.add("Reserved", hexed(message.reserved), offset=self.base + offsets["Reserved"])
        info = self.field("TargetInfo")
        self.version(message.version, offsets["Version"])
        self.string("TargetName", message.target_name, message.flags)
        if message.target_info is not None:
            node = self.root.add("TargetInfo", note=f"{info.length} bytes", offset=self.at(info))
            after = self.data[_list_end(info.offset, message.target_info) : info.offset + info.length]
            _av_pairs(node, message.target_info, self.base + info.offset, after)

    def authenticate(self, message: AuthenticateMessage) -> None:
        offsets = AuthenticateMessage.OFFSETS
        for name, _ in AuthenticateMessage.PAYLOAD_FIELDS:
            self.field(name)
        self.flags(message.flags, offsets["NegotiateFlags"])
        self.version(message.version, offsets["Version"])
        if message.mic is not None:
            note = "all zero" if message.mic == bytes(16) else None
            self.root.add("MIC", hexed(message.mic), note, self.base + offsets["MIC"])
        else:
            # MS-NLMP 2.2.1.3: VERSION and MIC are present when the payload leaves room for them.
            self.root.add("MIC", note="absent (no room before the payload)")
        self.string("DomainName", message.domain, message.flags)
        self.string("UserName", message.user, message.flags)
        self.string("Workstation", message.workstation, message.flags)
        self.responses(message)
        key = self.fields["EncryptedRandomSessionKey"]
        if key.length:
            key_hex = hexed(message.encrypted_random_session_key)
            self.root.add("EncryptedRandomSessionKey", key_hex, offset=self.at(key))

    def responses(self, message: AuthenticateMessage) -> None:
        lm, nt = message.lm_response, message.nt_response
        lm_at = self.at(self.fields["LmChallengeResponse"])
        nt_at = self.at(self.fields["NtChallengeResponse"])
        kind_node = self.root.add("ResponseKind")
        lm_node = self.root.add("LmChallengeResponse", hexed(lm) if lm else "''", offset=lm_at)
        nt_node = self.root.add("NtChallengeResponse", hexed(nt) if nt else "''", offset=nt_at)
        # The NTLM server's own decision (MS-NLMP 3.3.1 / 3.3.2 / 3.2.5.1.2).
        kind = classify_response(message.user, lm, nt, message.flags)
        kind_node.value = kind.value if kind is not None else "unknown"
        if kind == ResponseKind.ANONYMOUS:
            kind_node.note = "empty NtChallengeResponse"
        elif kind == ResponseKind.LM:
            kind_node.note = "LM response only (MS-NLMP 3.3.1)"
        elif kind == ResponseKind.NTLMV1_ESS:
            if len(lm) == 24 and lm[8:] == bytes(16) and lm_at is not None:
                kind_node.note = "ESS: LmChallengeResponse = client challenge + 16 zeros (MS-NLMP 3.3.1)"
                lm_node.add("ClientChallenge", hexed(lm[:8]), offset=lm_at)
                lm_node.add("Z(16)", hexed(lm[8:]), offset=lm_at + 8)
            else:
                kind_node.note = "ESS flag set, but the LM response is not client challenge + zeros"
        elif kind == ResponseKind.NTLMV1:
            if lm == nt:
                lm_node.note = "a copy of NtChallengeResponse (MS-NLMP 3.3.1)"
        elif kind == ResponseKind.NTLMV2 and nt_at is not None:
            _ntlmv2(nt_node, nt, nt_at)
            _lmv2(lm_node, lm, lm_at)
        elif not nt and lm in (b"", b"\x00"):
            kind_node.note = f"empty NtChallengeResponse, but UserName is {message.user!r}: not anonymous"
        else:
            kind_node.note = f"NtChallengeResponse of {len(nt)} bytes fits no response kind"


def _ntlmv2(node: Node, nt: bytes, at: int) -> None:
    """MS-NLMP 2.2.2.8 NTLMv2_RESPONSE and its 2.2.2.7 NTLMv2_CLIENT_CHALLENGE."""
    try:
        response = NtlmV2Response.unpack(nt)
        blob = response.client_challenge
    except MalformedMessage as exc:
        node.note = f"not an NTLMv2_RESPONSE: {exc.reason} at offset {at + (exc.offset or 0)}"
        return
    node.value = None
    node.note = f"NTLMv2_RESPONSE, {len(nt)} bytes"
    node.add("NTProofStr", hexed(response.nt_proof_str), offset=at)
    b = at + 16
    offsets = NtlmV2ClientChallenge.OFFSETS
    child = node.add("NTLMv2_CLIENT_CHALLENGE", note=f"{len(response.blob)} bytes", offset=b)
    child.add("RespType", str(blob.resp_type), offset=b + offsets["RespType"])
    child.add("HiRespType", str(blob.hi_resp_type), offset=b + offsets["HiRespType"])
    child.add("Reserved1", f"0x{blob.reserved1:04x}", offset=b + offsets["Reserved1"])
    child.add("Reserved2", f"0x{blob.reserved2:08x}", offset=b + offsets["Reserved2"])
    stamp = blob.timestamp
    child.add("TimeStamp", filetime(stamp), f"FILETIME 0x{stamp:016x}", b + offsets["TimeStamp"])
    client = hexed(blob.challenge_from_client)
    child.add("ChallengeFromClient", client, offset=b + offsets["ChallengeFromClient"])
    child.add("Reserved3", f"0x{blob.reserved3:08x}", offset=b + offsets["Reserved3"])
    pairs = child.add("AvPairs", offset=b + offsets["AvPairs"])
    _av_pairs(pairs, blob.av_pairs, b + offsets["AvPairs"], blob.trailer)
    flags = av_get(blob.av_pairs, AvId.MsvAvFlags)
    if flags is not None and len(flags) == 4 and unpack_u32(flags, "MsvAvFlags") & AvFlags.MIC_PRESENT:
        pairs.note = "MsvAvFlags says a MIC is present"


def _lmv2(node: Node, lm: bytes, at: int | None) -> None:
    """MS-NLMP 2.2.2.4: LMv2_RESPONSE, or 24 zeros when the client sent MsvAvTimestamp (3.1.5.1.2)."""
    if len(lm) != 24 or at is None:
        return
    if lm == bytes(24):
        node.note = "zero LMv2 (MsvAvTimestamp was sent, MS-NLMP 3.1.5.1.2)"
        return
    response = LmV2Response.unpack(lm)
    node.note = "LMv2_RESPONSE"
    node.add("Response", hexed(response.response), offset=at)
    node.add("ChallengeFromClient", hexed(response.challenge_from_client), offset=at + 16)


def _surrogate(text: str) -> str | None:
    """A note when the UTF-16 held an unpaired surrogate (the codec keeps it as it came)."""
    return "unpaired surrogate" if any("\ud800" <= c <= "\udfff" for c in text) else None


def _list_end(start: int, pairs: tuple[AvPair, ...]) -> int:
    """Where an AV_PAIR list that starts at `start` ends, its MsvAvEOL included (MS-NLMP 2.2.2.1)."""
    return start + sum(4 + len(p.value) for p in pairs) + 4


def _av_pairs(parent: Node, pairs: tuple[AvPair, ...], at: int, after: bytes) -> None:
    """MS-NLMP 2.2.2.1: the AV_PAIRs of a list that starts at `at`, its MsvAvEOL, and what follows it."""
    for pair in pairs:
        name = pair.id.name if isinstance(pair.id, AvId) else f"AvId {pair.id}"
        _av_value(parent.add(name, offset=at), pair, at + 4)
        at += 4 + len(pair.value)
    parent.add("MsvAvEOL", note="end of list", offset=at)
    if after:
        parent.add("(after MsvAvEOL)", hexed(after), offset=at + 4)


def _av_value(node: Node, pair: AvPair, at: int) -> None:
    value = pair.value
    try:
        if pair.id in _NAMES:
            text = decode_unicode(value, node.name)
            node.value, node.note = repr(text), _surrogate(text)
        elif pair.id == AvId.MsvAvFlags:
            flags = unpack_u32(value, "MsvAvFlags")
            node.value = f"0x{flags:08x}"
            for name in flag_list(AvFlags, flags):
                node.add(name)
        elif pair.id == AvId.MsvAvTimestamp:
            stamp = unpack_filetime(value)
            node.value, node.note = filetime(stamp), f"FILETIME 0x{stamp:016x}"
        elif pair.id == AvId.MsvAvSingleHost:
            host = SingleHostData.unpack(value)
            offsets = SingleHostData.OFFSETS
            node.value = f"{len(value)} bytes"
            node.add("Size", str(host.size), offset=at + offsets["Size"])
            node.add("Z4", f"0x{host.z4:08x}", offset=at + offsets["Z4"])
            node.add("CustomData", hexed(host.custom_data), offset=at + offsets["CustomData"])
            node.add("MachineID", hexed(host.machine_id), offset=at + offsets["MachineID"])
        elif pair.id == AvId.MsvAvChannelBindings:
            node.value = hexed(value)
            zero = value == bytes(len(value))
            node.note = "all zero: no channel binding" if zero else "MD5 of gss_channel_bindings_struct"
        else:
            node.value = hexed(value)
    except MalformedMessage as exc:
        node.value, node.note = hexed(value), exc.reason
