"""No secret leaks: full sessions (SMB2 signed, encrypted, 2.x; HTTP NTLM and Negotiate) with DEBUG logging
from every logger, plus failed logins; no password, NT hash, session/signing/application/encryption key may
appear in any log record, in repr() of any smb2auth object reachable from the sessions and servers, or in any
exception message. Each secret is searched as text, hex (both cases) and the repr of its bytes.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import logging
import types
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from smb2auth.authority.local import LocalAuthority
from smb2auth.client import Dialect, Smb2ClientError, connect
from smb2auth.errors import ProtocolStateError
from smb2auth.http.client import ntlm_context_factory, request_with_auth
from smb2auth.http.headers import AuthScheme
from smb2auth.http.mechanisms import ntlm_http_config
from smb2auth.http.wsgi import running_http_server
from smb2auth.ntlm import crypto
from smb2auth.testing import RunningServer, running_server

USER, DOMAIN = "keeper", "TESTGRP"
PASSWORD = "Vault-9x!Kq2#secret"  # unique enough to never appear by chance


@pytest.fixture(autouse=True)
def _debug_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("smb2auth"):
            logging.getLogger(name).setLevel(logging.DEBUG)


def _forms(secret: bytes | str) -> set[str]:
    if isinstance(secret, str):
        return {secret}
    if len(secret) < 8 or not secret.strip(b"\x00"):
        return set()  # empty or all-zero keys (guest/anonymous) say nothing
    return {secret.hex(), secret.hex().upper(), repr(secret), repr(secret)[2:-1]}


class Secrets:
    def __init__(self) -> None:
        self.forms: dict[str, str] = {}

    def add(self, name: str, secret: bytes | str) -> None:
        for form in _forms(secret):
            self.forms[form] = name

    def check(self, where: str, text: str) -> None:
        for form, name in self.forms.items():
            assert form not in text, f"{name} leaked in {where}"


_LEAVES = (str, bytes, bytearray, int, float, bool, type(None), type, types.FunctionType, types.MethodType,
           types.BuiltinFunctionType, types.ModuleType)


def _walk(root: object, depth: int = 6) -> Iterator[object]:
    """Every object reachable from `root` (breadth first) through attributes, slots and containers."""
    seen: set[int] = set()
    queue: collections.deque[tuple[object, int]] = collections.deque([(root, 0)])
    while queue:
        obj, level = queue.popleft()
        if id(obj) in seen or isinstance(obj, _LEAVES):
            continue
        seen.add(id(obj))
        yield obj
        if level >= depth:
            continue
        children: Iterable[object] = ()
        if isinstance(obj, dict):
            children = [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset):
            children = list(obj)
        else:
            values: list[object] = []
            if hasattr(obj, "__dict__"):
                values += list(vars(obj).values())
            for cls in type(obj).__mro__:
                for slot in getattr(cls, "__slots__", ()):
                    if hasattr(obj, slot):
                        values.append(getattr(obj, slot))
            children = values
        queue.extend((child, level + 1) for child in children)


def _check_reprs(secrets: Secrets, *roots: object) -> int:
    count = 0
    for root in roots:
        for obj in _walk(root):
            if type(obj).__module__.startswith("smb2auth"):
                secrets.check(f"repr({type(obj).__name__})", repr(obj))
                secrets.check(f"str({type(obj).__name__})", str(obj))
                count += 1
    return count


def _check_logs(secrets: Secrets, caplog: pytest.LogCaptureFixture) -> int:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in caplog.records:
        secrets.check(f"log record of {record.name}", formatter.format(record) + repr(record.args))
    return len(caplog.records)


def _server_secrets(rs: RunningServer, secrets: Secrets) -> None:
    def collect() -> list[tuple[str, bytes]]:
        found = []
        for session in rs.server.ctx.sessions.values():
            for name in ("signing_key", "encryption_key", "decryption_key"):
                found.append((f"server {name}", getattr(session, name)))
        return found

    for name, value in rs.call(collect):
        secrets.add(name, value)


def test_smb2_sessions_leak_nothing(caplog: pytest.LogCaptureFixture) -> None:
    secrets = Secrets()
    nt_hash = crypto.ntowfv1(PASSWORD)
    secrets.add("password", PASSWORD)
    secrets.add("NT hash", nt_hash)
    secrets.add("NTOWFv2", crypto.ntowfv2(nt_hash, USER, DOMAIN))
    with running_server(username=USER, password=PASSWORD, domain=DOMAIN, shares=("data",)) as rs:
        sessions = []
        for dialects, encrypt in (((Dialect.SMB3_1_1,), False), ((Dialect.SMB3_1_1,), True),
                                  ((Dialect.SMB3_0,), True), ((Dialect.SMB2_1,), False)):
            session = connect("127.0.0.1", rs.port, username=USER, password=PASSWORD, domain=DOMAIN,
                              dialects=dialects, require_encryption=encrypt, timeout=20)
            session.tree_connect("data")
            session.echo()
            sessions.append(session)
            for name in ("session_key", "signing_key", "application_key", "encryption_key", "decryption_key"):
                secrets.add(f"client {name}", getattr(session, name))
        assert any(s.encryption_key for s in sessions)
        _server_secrets(rs, secrets)
        failures = []
        for password in ("wrong-" + PASSWORD, PASSWORD[:-1]):
            with pytest.raises(Smb2ClientError) as err:
                connect("127.0.0.1", rs.port, username=USER, password=password, domain=DOMAIN, timeout=20)
            secrets.add("wrong password", password)
            failures.append(err.value)
        for exc in failures:
            secrets.check("exception message", f"{exc} {exc!r} {exc.args!r}")
        objects = rs.call(lambda: _check_reprs(secrets, rs.server, rs.server.ctx.events.events))
        objects += _check_reprs(secrets, sessions, [s.core for s in sessions], rs.config)
        for session in sessions:
            session.logoff()
            session.close()
    records = _check_logs(secrets, caplog)
    assert records >= 6 and objects > 50  # the checks saw something: a login event each, and more
    assert any(e.status == "STATUS_LOGON_FAILURE" for e in rs.events)
    for event in rs.events:
        secrets.check("login event", repr(event) + event.describe() + str(dataclasses.asdict(event)))


@pytest.mark.parametrize("scheme", [AuthScheme.NTLM, AuthScheme.NEGOTIATE])
def test_http_sessions_leak_nothing(caplog: pytest.LogCaptureFixture, scheme: AuthScheme) -> None:
    secrets = Secrets()
    secrets.add("password", PASSWORD)
    secrets.add("NT hash", crypto.ntowfv1(PASSWORD))
    authority = LocalAuthority(DOMAIN)
    authority.add_user(USER, PASSWORD)
    events: list[Any] = []
    config = ntlm_http_config(authority, on_login=events.append)
    contexts: list[Any] = []

    def factory(password: str) -> Any:
        make = ntlm_context_factory(USER, password, domain=DOMAIN, scheme=scheme)

        def new() -> Any:
            context = make()
            contexts.append(context)
            return context

        return new

    with running_http_server(config) as server:
        statuses = []
        for password in (PASSWORD, "wrong-" + PASSWORD):
            conn = http.client.HTTPConnection(server.host, server.port, timeout=20)
            response = request_with_auth(conn, "GET", "/", context_factory=factory(password), scheme=scheme)
            body = response.read().decode(errors="replace")
            statuses.append(response.status)
            secrets.check("HTTP response", body + str(response.getheaders()))
            conn.close()
            secrets.add("wrong password" if password != PASSWORD else "password", password)
    assert statuses == [200, 401]
    for context in contexts:
        try:
            key = context.session_key
        except ProtocolStateError as exc:  # the failed handshake has none, and says so without secrets
            secrets.check("exception message", str(exc))
            continue
        secrets.add("HTTP session key", key)
    assert any(k == "HTTP session key" for k in secrets.forms.values())
    assert _check_reprs(secrets, contexts, config, events) > 3
    assert _check_logs(secrets, caplog) > 3
