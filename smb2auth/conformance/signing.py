"""Signing and encryption cases (MS-SMB2 3.1.4, 3.3.5.2.1.1, 3.3.5.2.4, 3.3.5.2.9, 3.3.5.5.3, 3.3.5.15.12;
WPTS Signing, Encryption, ValidateNegotiateInfo): the final SESSION_SETUP response signed with the right key
on each dialect, requests with a bad or no signature, `encrypt data`, sealed sessions on each 3.x dialect, a
tampered TRANSFORM_HEADER, and FSCTL_VALIDATE_NEGOTIATE_INFO."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from smb2auth.conformance._common import attempt, refusal
from smb2auth.conformance.probe import Link, Probe
from smb2auth.conformance.registry import Group, Outcome, Verdict, failed, passed, skipped, warned
from smb2auth.errors import Smb2AuthError
from smb2auth.smb2 import crypto
from smb2auth.smb2.header import Command
from smb2auth.smb2.ioctl import (
    FSCTL_VALIDATE_NEGOTIATE_INFO,
    IoctlRequest,
    ValidateNegotiateInfoRequest,
    ValidateNegotiateInfoResponse,
)
from smb2auth.smb2.negotiate import SMB2_DIALECTS, Dialect, dialect_name
from smb2auth.smb2.session import SessionFlags
from smb2auth.status import NtStatus

GROUP = Group("signing")
_SMB3 = (Dialect.SMB3_0, Dialect.SMB3_0_2, Dialect.SMB3_1_1)


def _session(p: Probe, dialect: Dialect, *, validate_negotiate: bool = True) -> Link | Outcome:
    """A session on `dialect`, or the SKIP/FAIL that says why there is none."""
    if not p.profile.speaks(dialect):
        return skipped(f"dialect {dialect_name(dialect)} not offered")
    link = p.link((dialect,), validate_negotiate=validate_negotiate)
    result = attempt(link)
    if result.succeeded and result.error is None:
        return link
    if dialect < Dialect.SMB3_0 and result.status == NtStatus.STATUS_ACCESS_DENIED:
        return skipped(f"{dialect_name(dialect)} sessions refused (encryption required, MS-SMB2 3.3.5.5)")
    if result.error is not None and result.succeeded:
        return failed(f"logged in; {result.error}")
    return failed(f"login {result.name}" + (f" ({result.error})" if result.error else ""))


def _final_response(dialect: Dialect) -> None:
    label = dialect_name(dialect)
    chain = " over the preauth integrity chain" if dialect == Dialect.SMB3_1_1 else ""

    def check(p: Probe) -> Outcome:
        link = _session(p, dialect)
        if isinstance(link, Outcome):
            return link
        core = link.core
        if not core.setup_response_signed:
            return failed("final SESSION_SETUP response unsigned")
        algorithm = core.signing_algorithm.name if core.signing_algorithm is not None else "?"
        return passed(f"signed ({algorithm}{chain}), verified")

    expectation = f"{label}: the final SESSION_SETUP response signed with the session's signing key{chain}"
    GROUP.add(f"final-response-{label}", "MS-SMB2 3.3.5.5.3, 3.1.4.1", expectation, check)


for _dialect in SMB2_DIALECTS:
    _final_response(_dialect)


def _signed_session(p: Probe) -> Link | Outcome:
    """A session on the highest dialect whose requests are signed, not sealed."""
    link = _session(p, p.profile.top)
    if isinstance(link, Link) and link.core.encrypt_data:
        return skipped("the session is encrypted: its requests are sealed, not signed")
    return link


def _bad_request(name: str, expectation: str, **raw: object) -> None:
    def check(p: Probe) -> Outcome:
        link = _signed_session(p)
        if isinstance(link, Outcome):
            return link
        answer = link.tree_connect_ipc(**raw)
        outcome = refusal(link, answer.status, NtStatus.STATUS_ACCESS_DENIED)
        if outcome.verdict is not Verdict.PASS:
            return outcome
        if not link.tree_connect_ipc().ok:
            return failed(f"{answer.name}; then the session stopped working")
        return passed(f"{answer.name}, the session kept")

    GROUP.add(name, "MS-SMB2 3.3.5.2.4", expectation, check)


def _flip_last(message: bytes) -> bytes:
    return message[:-1] + bytes([message[-1] ^ 1])


_bad_request("bad-signature", "a TREE_CONNECT whose body changed after signing: STATUS_ACCESS_DENIED, the"
             " session kept", sign=True, edit=_flip_last)
_bad_request("unsigned-request", "an unsigned TREE_CONNECT on a session that signs: STATUS_ACCESS_DENIED,"
             " the session kept", sign=False)


@GROUP.case("wrong-key", "MS-SMB2 3.3.5.2.4",
            "a TREE_CONNECT signed with another key: STATUS_ACCESS_DENIED, the session kept")
def wrong_key(p: Probe) -> Outcome:
    link = _signed_session(p)
    if isinstance(link, Outcome):
        return link
    algorithm = link.core.signing_algorithm
    assert algorithm is not None

    def other_key(message: bytes) -> bytes:
        return crypto.sign(message, bytes(16), algorithm)

    answer = link.tree_connect_ipc(sign=False, edit=other_key)
    outcome = refusal(link, answer.status, NtStatus.STATUS_ACCESS_DENIED)
    if outcome.verdict is not Verdict.PASS:
        return outcome
    if not link.tree_connect_ipc().ok:
        return failed(f"{answer.name}; then the session stopped working")
    return passed(f"{answer.name}, the session kept")


@GROUP.case("encrypt-data", "MS-SMB2 3.3.5.5.3, 3.3.5.2.9",
            "SMB2_SESSION_FLAG_ENCRYPT_DATA: a signed, unencrypted request refused (STATUS_ACCESS_DENIED), a"
            " sealed one served")
def encrypt_data(p: Probe) -> Outcome:
    top = p.profile.top
    if top < Dialect.SMB3_0:
        return skipped("no 3.x dialect")
    link = _session(p, top)
    if isinstance(link, Outcome):
        return link
    if not link.core.session_flags & SessionFlags.ENCRYPT_DATA:
        return skipped("the server does not require encryption (no SMB2_SESSION_FLAG_ENCRYPT_DATA)")
    plain = link.tree_connect_ipc(sign=True, encrypt=False)
    if plain.closed:
        return failed("the unencrypted request closed the connection")
    if plain.status != NtStatus.STATUS_ACCESS_DENIED:
        return failed(f"the unencrypted request answered {plain.name}")
    sealed = link.tree_connect_ipc()
    if not sealed.ok or sealed.response is None or not sealed.response.encrypted:
        return failed(f"unencrypted refused; the sealed request {sealed.name}")
    return passed("unencrypted STATUS_ACCESS_DENIED, sealed served encrypted")


def _encryption(dialect: Dialect) -> None:
    label = dialect_name(dialect)

    def check(p: Probe) -> Outcome:
        if not p.profile.speaks(dialect):
            return skipped(f"dialect {label} not offered")
        link = p.link((dialect,), require_encryption=True)
        try:
            link.login()
        except Smb2AuthError as exc:
            if getattr(exc, "status", None) == NtStatus.STATUS_NOT_SUPPORTED:
                return skipped(f"no encryption on {label}: {exc}")
            return failed(str(exc))
        tree = link.exchange(link.core.tree_connect("IPC$"))
        cipher = link.core.cipher.name if link.core.cipher is not None else "?"
        if not tree.encrypted:
            return failed(f"{cipher}: the TREE_CONNECT response came unencrypted")
        return passed(f"{cipher}, requests and responses sealed")

    GROUP.add(f"encryption-{label}", "MS-SMB2 3.1.4.3, 3.3.4.1.4",
              f"{label} with encryption asked for: a sealed session (or no cipher offered)", check)


for _dialect in _SMB3:
    _encryption(_dialect)


def _sealed_session(p: Probe) -> Link | Outcome:
    top = p.profile.top
    if top < Dialect.SMB3_0:
        return skipped("no 3.x dialect")
    link = p.link((top,), require_encryption=True)
    try:
        link.login()
    except Smb2AuthError as exc:
        if getattr(exc, "status", None) == NtStatus.STATUS_NOT_SUPPORTED:
            return skipped(f"no encryption: {exc}")
        raise
    return link


def _tampered_transform(name: str, what: str, edit: Callable[[bytes], bytes]) -> None:
    def check(p: Probe) -> Outcome:
        link = _sealed_session(p)
        if isinstance(link, Outcome):
            return link
        answer = link.tree_connect_ipc(edit=edit)
        return passed("disconnected") if answer.closed else failed(f"answered {answer.name}")

    GROUP.add(name, "MS-SMB2 3.3.5.2.1.1", f"{what}: the connection is closed", check)


def _other_session(message: bytes) -> bytes:
    # MS-SMB2 2.2.41: SessionId is the TRANSFORM_HEADER's last 8 bytes (offset 44).
    session_id = int.from_bytes(message[44:52], "little") ^ 0x5A5A
    return message[:44] + session_id.to_bytes(8, "little") + message[52:]


_tampered_transform("transform-tampered", "a sealed TREE_CONNECT with one ciphertext bit flipped", _flip_last)
_tampered_transform("transform-unknown-session", "a TRANSFORM_HEADER naming a SessionId the server never"
                    " gave", _other_session)


def _validate(dialect: Dialect) -> None:
    label = dialect_name(dialect)

    def check(p: Probe) -> Outcome:
        link = _session(p, dialect)
        if isinstance(link, Outcome):
            return link
        link.exchange(link.core.tree_connect("IPC$"))
        request = link.core.data_to_send()
        if not request:
            return failed("the client sent no FSCTL_VALIDATE_NEGOTIATE_INFO")
        try:
            response = link.exchange(request)
        except Smb2AuthError as exc:
            return failed(str(exc))
        if link.core.validated_negotiate:
            return passed("answered " + ("sealed" if response.encrypted else "signed") + ", matching")
        # MS-SMB2 3.2.5.14.12 (and Samba's client) accept a signed "not supported": no downgrade protection.
        return warned(f"signed {response.header.status:#x}: not supported, the NEGOTIATE is not confirmed")

    GROUP.add(f"validate-negotiate-{label}", "MS-SMB2 3.3.5.15.12",
              f"{label}: FSCTL_VALIDATE_NEGOTIATE_INFO answered signed, matching the NEGOTIATE", check)


for _dialect in (Dialect.SMB3_0, Dialect.SMB3_0_2):
    _validate(_dialect)


InfoEdit = Callable[[ValidateNegotiateInfoRequest], ValidateNegotiateInfoRequest]


def _validate_request(link: Link, edit: InfoEdit) -> Outcome:
    """FSCTL_VALIDATE_NEGOTIATE_INFO, `edit`ed from what the NEGOTIATE said, after a TREE_CONNECT to IPC$."""
    tree = link.tree_connect_ipc()
    if not tree.ok or tree.response is None:
        return failed(f"TREE_CONNECT IPC$ {tree.name}")
    info = link.core.negotiate_info
    assert info is not None
    size = ValidateNegotiateInfoResponse.SIZE
    body = IoctlRequest(FSCTL_VALIDATE_NEGOTIATE_INFO, edit(info).pack(), max_output_response=size).pack()
    answer = link.answer(link.core.raw_request(Command.IOCTL, body, tree_id=tree.response.header.tree_id,
                                               sign=True))
    return passed("disconnected") if answer.closed else failed(f"answered {answer.name}")


@GROUP.case("validate-negotiate-mismatch", "MS-SMB2 3.3.5.15.12",
            "FSCTL_VALIDATE_NEGOTIATE_INFO with another ClientGuid than the NEGOTIATE's: the connection is"
            " closed")
def validate_mismatch(p: Probe) -> Outcome:
    dialect = next((d for d in (Dialect.SMB3_0_2, Dialect.SMB3_0) if p.profile.speaks(d)), None)
    if dialect is None:
        return skipped("neither 3.0 nor 3.0.2 offered")
    link = _session(p, dialect, validate_negotiate=False)
    if isinstance(link, Outcome):
        return link
    return _validate_request(link, lambda info: dataclasses.replace(info, client_guid=bytes(range(16, 32))))


@GROUP.case("validate-negotiate-3.1.1", "MS-SMB2 3.3.5.15.12",
            "FSCTL_VALIDATE_NEGOTIATE_INFO on 3.1.1 (which has preauth integrity instead): the connection is"
            " closed")
def validate_311(p: Probe) -> Outcome:
    link = _session(p, Dialect.SMB3_1_1)
    if isinstance(link, Outcome):
        return link
    return _validate_request(link, lambda info: info)


CASES = GROUP.cases
