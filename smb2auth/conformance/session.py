"""Session cases (MS-SMB2 3.3.5.5, 3.3.5.6, 3.3.5.2.9; WPTS SessionMgmt, smbtorture smb2.session): new
sessions, a second one on the same connection, reauthentication, PreviousSessionId, LOGOFF, SessionIds that
are not this connection's, binding on 2.x."""

from __future__ import annotations

import dataclasses
import time

from smb2auth.client.hooks import Hooks
from smb2auth.conformance._common import attempt, refusal
from smb2auth.conformance.probe import Answer, Link, Probe
from smb2auth.conformance.registry import Group, Outcome, failed, passed, skipped
from smb2auth.errors import Smb2AuthError
from smb2auth.ntlm.client import NtlmClient
from smb2auth.smb2 import crypto
from smb2auth.smb2.header import Command
from smb2auth.smb2.negotiate import Capabilities, Dialect, NegotiateRequest, SecurityMode, dialect_name
from smb2auth.smb2.session import SessionSetupFlags, SessionSetupRequest, SessionSetupResponse
from smb2auth.spnego.context import SpnegoClient
from smb2auth.status import NtStatus

GROUP = Group("session")
# How long a case polls for the server to act on something another connection did (Samba closes a previous
# session through a message to the process that owns it).
SETTLE = 2.0


_NO_FLAGS = SessionSetupFlags(0)


def raw_setup(link: Link, session_id: int, *, password: str | None = None,
              flags: SessionSetupFlags = _NO_FLAGS) -> tuple[Answer, int, SpnegoClient]:
    """A whole SPNEGO/NTLM exchange in raw SESSION_SETUP requests on `link` for `session_id`: the last answer,
    the SessionId it ended on, and the SPNEGO context (complete on success). On the link's own session (a
    reauthentication) the requests are signed or sealed as the session's are, otherwise neither."""
    t = link.probe.target
    ntlm = NtlmClient(t.user, t.password if password is None else password, domain=t.domain,
                      workstation="CONFORMANCE")
    spnego = SpnegoClient(ntlm)
    token = spnego.step(None)
    own = session_id == link.core.session_id and link.core.established
    protect = None if own else False
    while True:
        request = SessionSetupRequest(token or b"", flags, SecurityMode.SIGNING_REQUIRED, Capabilities.DFS)
        raw = link.core.raw_request(
            Command.SESSION_SETUP, request.pack(), session_id=session_id, sign=protect, encrypt=protect
        )
        answer = link.answer(raw)
        response = answer.response
        if response is None or not isinstance(response.body, SessionSetupResponse):
            return answer, session_id, spnego
        session_id = response.header.session_id
        if answer.status != NtStatus.STATUS_MORE_PROCESSING_REQUIRED:
            if answer.ok:
                spnego.step(response.body.security_buffer or None)
            return answer, session_id, spnego
        token = spnego.step(response.body.security_buffer)


def _still_signs(link: Link) -> bool:
    """Whether the link's session still works with its keys: a signed (or sealed) TREE_CONNECT succeeds."""
    answer = link.tree_connect_ipc()
    response = answer.response
    return answer.ok and response is not None and (response.signed or response.encrypted)


@GROUP.case("new", "MS-SMB2 3.3.5.5.1, 3.3.5.5.3",
            "a new session: STATUS_SUCCESS, a nonzero SessionId, a signed TREE_CONNECT to IPC$ after it")
def new(p: Probe) -> Outcome:
    link = p.login()
    if not link.core.session_id:
        return failed("SessionId 0")
    tree = link.tree_connect_ipc()
    if not tree.ok:
        return failed(f"logged in, TREE_CONNECT IPC$ {tree.name}")
    return passed(f"logged in on {link.core.dialect_name}, TREE_CONNECT IPC$ succeeded")


@GROUP.case("second-session", "MS-SMB2 3.3.5.5.1",
            "a second session on the same connection: its own SessionId; the first still works")
def second_session(p: Probe) -> Outcome:
    link = p.login()
    answer, session_id, _ = raw_setup(link, 0)
    if not answer.ok:
        return failed(f"second SESSION_SETUP {answer.name}")
    if session_id == link.core.session_id:
        return failed("the second session got the first one's SessionId")
    if not _still_signs(link):
        return failed("the first session stopped working")
    return passed("two SessionIds, the first still signs")


@GROUP.case("reauth", "MS-SMB2 3.3.5.5.2, 3.3.5.5.3",
            "SESSION_SETUP again on the established SessionId: STATUS_SUCCESS, same session and keys")
def reauth(p: Probe) -> Outcome:
    link = p.login()
    before = link.core.session_id
    answer, session_id, spnego = raw_setup(link, before)
    if not answer.ok:
        return failed(f"reauthentication {answer.name}")
    if session_id != before:
        return failed(f"answered for SessionId 0x{session_id:x}")
    if not spnego.complete:
        return failed("the SPNEGO exchange did not complete")
    if not _still_signs(link):
        return failed("reauthenticated; the session's keys no longer sign")
    return passed("reauthenticated, the session still signs")


@GROUP.case("previous-session-id", "MS-SMB2 3.3.5.5.3",
            "a login with PreviousSessionId of a session of the same user: that session is closed")
def previous_session_id(p: Probe) -> Outcome:
    old = p.login()
    previous = old.core.session_id

    def edit(leg: int, request: SessionSetupRequest) -> SessionSetupRequest:
        return dataclasses.replace(request, previous_session_id=previous)

    new = p.login(hooks=Hooks(session_setup=edit))
    if new.core.session_id == previous:
        return failed("the new session got the previous one's SessionId")
    return _gone(old, "the previous session")


def _gone(link: Link, what: str) -> Outcome:
    """Whether the link's session has gone: its requests get STATUS_USER_SESSION_DELETED (or the connection
    closes), within SETTLE seconds."""
    deadline = time.monotonic() + SETTLE
    while True:
        answer = link.tree_connect_ipc()
        if answer.closed:
            return passed(f"{what} is gone: its connection closed")
        if answer.status == NtStatus.STATUS_USER_SESSION_DELETED:
            return passed(f"{what} is gone: STATUS_USER_SESSION_DELETED")
        if answer.status == NtStatus.STATUS_NETWORK_SESSION_EXPIRED:
            return passed(f"{what} is gone: STATUS_NETWORK_SESSION_EXPIRED")
        if not answer.ok or time.monotonic() > deadline:
            return failed(f"{what} still answers: TREE_CONNECT {answer.name}")
        time.sleep(0.1)


@GROUP.case("reconnect-other-dialect", "MS-SMB2 3.3.5.4, 3.3.5.5.3",
            "the same ClientGuid on another dialect with PreviousSessionId: that dialect, a session, the old"
            " one closed")
def reconnect_other_dialect(p: Probe) -> Outcome:
    spoken = [d for d in p.profile.dialects if d >= Dialect.SMB2_1]
    if len(spoken) < 2:
        return skipped("fewer than two dialects with a ClientGuid (2.1 and later)")
    first, second = spoken[-1], spoken[-2]
    guid = bytes(range(16))

    def same_guid(request: NegotiateRequest) -> bytes:
        return dataclasses.replace(request, client_guid=guid).pack()

    old = p.login((first,), hooks=Hooks(negotiate=same_guid), validate_negotiate=False)
    previous = old.core.session_id

    def edit(leg: int, request: SessionSetupRequest) -> SessionSetupRequest:
        return dataclasses.replace(request, previous_session_id=previous)

    new = p.link((second,), hooks=Hooks(negotiate=same_guid, session_setup=edit), validate_negotiate=False)
    result = attempt(new)
    if not result.succeeded:
        return failed(f"{dialect_name(second)} after {dialect_name(first)}: {result.name}")
    gone = _gone(old, f"{dialect_name(second)} logged in; the {dialect_name(first)} session")
    return gone


@GROUP.case("logoff", "MS-SMB2 3.3.5.6", "LOGOFF: STATUS_SUCCESS, the response signed (or sealed)")
def logoff(p: Probe) -> Outcome:
    link = p.login()
    response = link.exchange(link.core.logoff())
    if not (response.signed or response.encrypted):
        return failed("STATUS_SUCCESS, unsigned")
    return passed("STATUS_SUCCESS, " + ("sealed" if response.encrypted else "signed"))


@GROUP.case("reuse-after-logoff", "MS-SMB2 3.3.5.2.9",
            "a request on a SessionId after its LOGOFF: STATUS_USER_SESSION_DELETED")
def reuse_after_logoff(p: Probe) -> Outcome:
    link = p.login()
    link.exchange(link.core.logoff())
    # Signed, not sealed: a TRANSFORM_HEADER naming a gone session is a disconnect (MS-SMB2 3.3.5.2.1.1).
    answer = link.tree_connect_ipc(sign=True, encrypt=False)
    if answer.status == NtStatus.STATUS_USER_SESSION_DELETED:
        return passed(answer.name)
    return failed(answer.name)


@GROUP.case("foreign-session-id", "MS-SMB2 3.3.5.2.9",
            "another connection's SessionId, signed with its key: STATUS_USER_SESSION_DELETED")
def foreign_session_id(p: Probe) -> Outcome:
    owner = p.login()
    core = owner.core
    other = p.link((core.dialect,) if core.dialect is not None else (), hold=True)
    other.negotiate()
    algorithm = core.signing_algorithm
    assert algorithm is not None
    key = core.signing_key

    def signed(message: bytes) -> bytes:
        return crypto.sign(message, key, algorithm)

    answer = other.tree_connect_ipc(session_id=core.session_id, sign=False, encrypt=False, edit=signed)
    if answer.status == NtStatus.STATUS_USER_SESSION_DELETED:
        return passed(answer.name)
    return failed(answer.name)


@GROUP.case("binding-2x", "MS-SMB2 3.3.5.5",
            "SMB2_SESSION_FLAG_BINDING on 2.1: refused (STATUS_REQUEST_NOT_ACCEPTED, as Windows and Samba"
            " answer), the bound-to session untouched")
def binding_2x(p: Probe) -> Outcome:
    if not p.profile.speaks(Dialect.SMB2_1):
        return skipped("dialect 2.1 not offered")
    owner = p.link((Dialect.SMB2_1,))
    logged = attempt(owner)
    if logged.status == NtStatus.STATUS_ACCESS_DENIED and not logged.succeeded:
        return skipped("2.1 sessions refused (STATUS_ACCESS_DENIED: encryption required, MS-SMB2 3.3.5.5)")
    if not logged.succeeded:
        return failed(f"2.1 login {logged.name}")
    other = p.link((Dialect.SMB2_1,), hold=True)
    other.negotiate()
    answer, _, _ = raw_setup(other, owner.core.session_id, flags=SessionSetupFlags.BINDING)
    outcome = refusal(other, answer.status)
    if outcome.verdict.value != "PASS":
        return outcome
    if answer.status not in (NtStatus.STATUS_REQUEST_NOT_ACCEPTED, NtStatus.STATUS_USER_SESSION_DELETED):
        return failed(f"{answer.name}, not STATUS_REQUEST_NOT_ACCEPTED")
    if not _still_signs(owner):
        return failed(f"{answer.name}; the bound-to session stopped working")
    return outcome


@GROUP.case("unknown-session-id", "MS-SMB2 3.3.5.5",
            "SESSION_SETUP on a SessionId the server never gave: STATUS_USER_SESSION_DELETED")
def unknown_session_id(p: Probe) -> Outcome:
    link = p.link(hold=True)
    link.negotiate()
    answer, _, _ = raw_setup(link, 0x0BAD0BAD0BAD)
    return refusal(link, answer.status, NtStatus.STATUS_USER_SESSION_DELETED)


@GROUP.case("retry-after-failure", "MS-SMB2 3.3.5.5.3",
            "a failed logon removes its session (STATUS_USER_SESSION_DELETED on its id); the next one on the"
            " connection succeeds")
def retry_after_failure(p: Probe) -> Outcome:
    link = p.link(hold=True)
    link.negotiate()
    answer, failed_id, _ = raw_setup(link, 0, password=p.target.password + "x")
    if answer.ok:
        return failed("a wrong password logged in")
    after = link.tree_connect_ipc(session_id=failed_id, sign=False, encrypt=False)
    if after.status != NtStatus.STATUS_USER_SESSION_DELETED:
        return failed(f"{answer.name}; its SessionId then answers {after.name}")
    retry, _, _ = raw_setup(link, 0)
    if not retry.ok:
        return failed(f"{answer.name}; the next logon {retry.name}")
    return passed(f"{answer.name}, its session gone; the next logon succeeded")


@GROUP.case("expiry", "MS-SMB2 3.3.5.5.3",
            "Session.ExpirationTime honoured when the GSS context announces one")
def expiry(p: Probe) -> Outcome:
    link = p.login()
    try:
        link.exchange(link.core.echo())
    except Smb2AuthError as exc:
        return failed(f"ECHO on a fresh session: {exc}")
    # MS-SMB2 3.3.5.5.3: ExpirationTime comes from the GSS context; NTLM gives none (only Kerberos tickets
    # expire), so there is nothing to wait for.
    return skipped("NTLM announces no expiry (a Kerberos ticket lifetime would)")


CASES = GROUP.cases
