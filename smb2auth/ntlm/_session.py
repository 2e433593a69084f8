"""Session security after authentication (MS-NLMP 3.4): keys per direction, RC4 handles, sequence numbers."""

from __future__ import annotations

import hmac

from smb2auth.errors import AuthenticationError, ProtocolStateError
from smb2auth.ntlm import crypto
from smb2auth.ntlm.messages import (
    NTLMSSP_NEGOTIATE_SEAL,
    NTLMSSP_NEGOTIATE_SIGN,
)
from smb2auth.status import NtStatus

_DUMMY_SIGNATURE = b"\x01" + b"\x00" * 15


class SessionSecurity:
    """The four keys (MS-NLMP 3.1.5.1.2 / 3.2.5.1.2) and the per-direction RC4 and sequence state."""

    def __init__(self, flags: int, exported_session_key: bytes, *, client: bool) -> None:
        self.flags = flags
        self._key = exported_session_key
        self._client = client
        self._integrity = bool(flags & (NTLMSSP_NEGOTIATE_SIGN | NTLMSSP_NEGOTIATE_SEAL))
        self._ready = False
        self.out_seq = 0
        self.in_seq = 0

    def _derive(self) -> None:
        # Keys are derived on first use: most SMB2 sessions never sign with NTLM itself.
        flags, key = self.flags, self._key
        mine, theirs = self._client, not self._client
        self._out_sign = crypto.signkey(flags, key, client=mine)
        self._in_sign = crypto.signkey(flags, key, client=theirs)
        self._out_seal_key = crypto.sealkey(flags, key, client=mine)
        self._in_seal_key = crypto.sealkey(flags, key, client=theirs)
        self._out = crypto.rc4_init(self._out_seal_key)
        self._in = crypto.rc4_init(self._in_seal_key)
        self._ready = True

    def reset(self, *, outgoing: bool, reset_seqnums: bool = False) -> None:
        if not self._ready:
            self._derive()
        # MS-SPNG 3.3.5.1: after the mechListMIC the RC4 state restarts; sequence numbers carry on.
        if outgoing:
            self._out = crypto.rc4_init(self._out_seal_key)
            if reset_seqnums:
                self.out_seq = 0
        else:
            self._in = crypto.rc4_init(self._in_seal_key)
            if reset_seqnums:
                self.in_seq = 0

    def sign(self, data: bytes) -> bytes:
        if not self._ready:
            self._derive()
        if not self._integrity:
            # MS-NLMP 3.4.2: without SIGN or SEAL the signature is the dummy one.
            return _DUMMY_SIGNATURE
        signature = crypto.mac(self.flags, self._out, self._out_sign, self.out_seq, data)
        self.out_seq += 1
        return signature

    def verify(self, data: bytes, signature: bytes) -> None:
        if not self._ready:
            self._derive()
        if not self._integrity:
            expected = _DUMMY_SIGNATURE
        else:
            expected = crypto.mac(self.flags, self._in, self._in_sign, self.in_seq, data)
            self.in_seq += 1
        if not hmac.compare_digest(expected, signature):
            raise AuthenticationError(NtStatus.STATUS_ACCESS_DENIED, "NTLM message signature mismatch")

    def wrap(self, data: bytes) -> bytes:
        if not self.flags & NTLMSSP_NEGOTIATE_SEAL:
            raise AuthenticationError(NtStatus.STATUS_NOT_SUPPORTED, "sealing was not negotiated")
        if not self._ready:
            self._derive()
        sealed, signature = crypto.seal(self.flags, self._out, self._out_sign, self.out_seq, data)
        self.out_seq += 1
        return signature + sealed

    def unwrap(self, token: bytes) -> bytes:
        if not self.flags & NTLMSSP_NEGOTIATE_SEAL:
            raise AuthenticationError(NtStatus.STATUS_NOT_SUPPORTED, "sealing was not negotiated")
        if len(token) < 16:
            raise AuthenticationError(NtStatus.STATUS_ACCESS_DENIED, "wrapped token shorter than a signature")
        signature, sealed = token[:16], token[16:]
        if not self._ready:
            self._derive()
        data = self._in(sealed)
        self.verify(data, signature)
        return data


class SecurityContext:
    """GSS per-message calls over a completed context's SessionSecurity (MS-NLMP 3.4.2 - 3.4.4).

    A context sets `_session` when it completes; `_security()` refuses the calls before that.
    """

    _session: SessionSecurity | None

    def _security(self) -> SessionSecurity:
        if self._session is None:
            raise ProtocolStateError(f"{type(self).__name__}: no session security before completion")
        return self._session

    def sign(self, data: bytes) -> bytes:
        """GSS_GetMIC: the 16-byte NTLMSSP_MESSAGE_SIGNATURE of `data` (advances our sequence number)."""
        return self._security().sign(data)

    def verify(self, data: bytes, signature: bytes) -> None:
        """GSS_VerifyMIC; raises AuthenticationError(STATUS_ACCESS_DENIED) on a mismatch."""
        self._security().verify(data, signature)

    def wrap(self, data: bytes) -> bytes:
        """GSS_Wrap: signature || sealed data."""
        return self._security().wrap(data)

    def unwrap(self, token: bytes) -> bytes:
        """GSS_Unwrap of signature || sealed data."""
        return self._security().unwrap(token)

    def reset_crypto_state(self, outgoing: bool | None = None, *, reset_seqnums: bool = False) -> None:
        """Restart RC4 (both directions when `outgoing` is None), as SPNEGO does after the mechListMIC."""
        security = self._security()
        for direction in (True, False) if outgoing is None else (outgoing,):
            security.reset(outgoing=direction, reset_seqnums=reset_seqnums)
