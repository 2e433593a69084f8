"""A small three-leg mechanism with NTLM's shape, to test SPNEGO without the NTLM engine."""

from __future__ import annotations

import hashlib
import hmac

from smb2auth.errors import AuthenticationError, ProtocolStateError
from smb2auth.ntlm.events import Complete, Failed, HandshakeEvent, Send
from smb2auth.status import NtStatus

SIGN = 0x10


class _Security:
    def __init__(self, key: bytes, *, client: bool, flags: int) -> None:
        self.session_key: bytes | None = key
        self.negotiated_flags = flags
        self._out = b"c2s" if client else b"s2c"
        self._in = b"s2c" if client else b"c2s"
        self.out_seq = 0
        self.in_seq = 0
        self.resets = 0

    def _mac(self, direction: bytes, seq: int, data: bytes) -> bytes:
        assert self.session_key is not None
        return hmac.digest(self.session_key, direction + seq.to_bytes(4, "little") + data, "md5")

    def sign(self, data: bytes) -> bytes:
        sig = self._mac(self._out, self.out_seq, data)
        self.out_seq += 1
        return sig

    def verify(self, data: bytes, signature: bytes) -> None:
        expected = self._mac(self._in, self.in_seq, data)
        self.in_seq += 1
        if not hmac.compare_digest(expected, signature):
            raise AuthenticationError(NtStatus.STATUS_ACCESS_DENIED, "fake signature mismatch")

    def reset_crypto_state(self, outgoing: bool | None = None) -> None:
        self.resets += 1


class FakeClient(_Security):
    def __init__(self, secret: bytes = b"s3cret", *, flags: int = SIGN) -> None:
        super().__init__(b"", client=True, flags=flags)
        self.secret = secret
        self.legs = 0
        self.complete = False

    def step(self, token: bytes | None) -> bytes | None:
        if token is None and self.legs == 0:
            self.legs = 1
            return b"FAKE-NEGOTIATE"
        if self.legs == 1 and token is not None and token.startswith(b"FAKE-CHALLENGE:"):
            nonce = token.split(b":", 1)[1]
            self.session_key = hashlib.sha256(self.secret + nonce).digest()[:16]
            self.legs = 2
            self.complete = True
            return b"FAKE-AUTH:" + hmac.digest(self.secret, nonce, "md5")
        raise ProtocolStateError(f"fake client: unexpected {token!r} at leg {self.legs}")


class FakeServer(_Security):
    def __init__(self, secret: bytes = b"s3cret", *, nonce: bytes = b"n0nce", flags: int = SIGN) -> None:
        super().__init__(b"", client=False, flags=flags)
        self.secret = secret
        self.nonce = nonce
        self.legs = 0
        self.complete = False
        self.mic_present = True
        self.seen: list[bytes] = []

    authority = None

    def receive(self, token: bytes) -> HandshakeEvent:
        try:
            out = self._step(token)
        except (AuthenticationError, ProtocolStateError) as exc:
            return Failed(exc)
        return Complete() if self.complete else Send(out or b"")

    def validation_done(self, ticket: int, result: object) -> Complete | Failed:
        return Failed(ProtocolStateError("fake server: it never asks for a validation"))

    def _step(self, token: bytes) -> bytes | None:
        self.seen.append(token)
        if self.legs == 0 and token == b"FAKE-NEGOTIATE":
            self.legs = 1
            return b"FAKE-CHALLENGE:" + self.nonce
        if self.legs == 1 and token.startswith(b"FAKE-AUTH:"):
            if not hmac.compare_digest(token[10:], hmac.digest(self.secret, self.nonce, "md5")):
                raise AuthenticationError(NtStatus.STATUS_LOGON_FAILURE, "fake: wrong secret")
            self.session_key = hashlib.sha256(self.secret + self.nonce).digest()[:16]
            self.legs = 2
            self.complete = True
            return None
        raise ProtocolStateError(f"fake server: unexpected {token!r} at leg {self.legs}")
