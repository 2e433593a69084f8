"""What several case groups check the same way: a login attempt and what the server answered to it, a
refusal that must leave the connection serving, and edits of the SESSION_SETUP security buffer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from smb2auth.conformance.probe import Closed, Link
from smb2auth.conformance.registry import Outcome, failed, passed
from smb2auth.errors import MalformedMessage, Smb2AuthError
from smb2auth.ntlm.messages import AuthenticateMessage
from smb2auth.smb2.header import Command
from smb2auth.smb2.session import SessionFlags, SessionSetupRequest, SessionSetupResponse
from smb2auth.spnego import tokens
from smb2auth.status import NtStatus

SessionSetupEdit = Callable[[int, SessionSetupRequest], SessionSetupRequest]


@dataclass(frozen=True)
class Attempt:
    """How a login went: the server's last SESSION_SETUP status (None: it closed the connection), the session
    flags of a successful answer, and what our client raised, if anything."""

    status: int | None
    flags: SessionFlags = SessionFlags(0)
    error: Exception | None = None

    @property
    def name(self) -> str:
        return "connection closed" if self.status is None else NtStatus.name_of(self.status)

    @property
    def succeeded(self) -> bool:
        return self.status == NtStatus.STATUS_SUCCESS

    @property
    def guest(self) -> bool:
        return bool(self.flags & SessionFlags.IS_GUEST)

    @property
    def null(self) -> bool:
        return bool(self.flags & SessionFlags.IS_NULL)


def attempt(link: Link) -> Attempt:
    """NEGOTIATE and every SESSION_SETUP leg, as far as they go."""
    error: Exception | None = None
    try:
        link.login()
    except Closed:
        return Attempt(None)
    except (Smb2AuthError, ValueError) as exc:
        error = exc
    if link.last is None or link.last[0].command is not Command.SESSION_SETUP:
        status = link.last[0].status if link.last is not None else None
        return Attempt(status, error=error)
    header, body = link.last
    flags = SessionFlags(0)
    if header.status == NtStatus.STATUS_SUCCESS:
        try:
            flags = SessionSetupResponse.unpack(body).session_flags
        except MalformedMessage as exc:
            error = error or exc
    return Attempt(header.status, flags, error)


def refusal(link: Link, status: int | None, expected: int | None = None, platform: str = "") -> Outcome:
    """A request that must fail (with `expected`, when the spec names the status) and leave the connection
    serving."""
    if status is None:
        return failed("no answer: the connection closed")
    name = NtStatus.name_of(status)
    if status == NtStatus.STATUS_SUCCESS:
        return failed("accepted (STATUS_SUCCESS)")
    if expected is not None and status != expected:
        return failed(f"{name}, not {NtStatus.name_of(expected)}")
    if not link.alive():
        return failed(f"{name}, then the connection stopped serving")
    return passed(f"{name}, connection kept", platform)


def on_leg(leg: int, edit: Callable[[bytes], bytes]) -> SessionSetupEdit:
    """A Hooks.session_setup that replaces the security buffer of SESSION_SETUP leg `leg` by `edit` of it."""

    def hook(n: int, request: SessionSetupRequest) -> SessionSetupRequest:
        if n != leg:
            return request
        return dataclasses.replace(request, security_buffer=edit(request.security_buffer))

    return hook


def edit_resp(edit: Callable[[tokens.NegTokenResp], tokens.NegTokenResp]) -> Callable[[bytes], bytes]:
    """An edit of the NegTokenResp in a security buffer."""

    def change(buffer: bytes) -> bytes:
        resp = tokens.decode(buffer)
        if not isinstance(resp, tokens.NegTokenResp):
            raise MalformedMessage("the client's token is not a NegTokenResp")
        return edit(resp).encode()

    return change


def edit_authenticate(edit: Callable[[AuthenticateMessage, bytes], bytes]) -> SessionSetupEdit:
    """A Hooks.session_setup that replaces the NTLM AUTHENTICATE (leg 1) by `edit(parsed, raw)`."""

    def change(resp: tokens.NegTokenResp) -> tokens.NegTokenResp:
        raw = resp.response_token or b""
        return dataclasses.replace(resp, response_token=edit(AuthenticateMessage.unpack(raw), raw))

    return on_leg(1, edit_resp(change))
