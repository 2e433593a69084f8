"""LoginEvent / EventLog: fan-out, logging, and a broken callback not breaking a login."""

from __future__ import annotations

import logging

import pytest

from smb2auth.events import EventLog, LoginEvent


def _event(status: str = "STATUS_SUCCESS") -> LoginEvent:
    return LoginEvent(transport="smb2", client_address="127.0.0.1:5000", user="alice", domain="TESTGRP",
                      workstation="WS1", status=status, reason="" if status == "STATUS_SUCCESS" else "bad pw",
                      dialect="3.1.1", response_kind="NTLMv2", time=0.0)


def test_emit_fans_out_logs_and_keeps(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[LoginEvent] = []

    def broken(_: LoginEvent) -> None:
        raise RuntimeError("observer bug")

    log = EventLog([broken, seen.append], keep=2)
    with caplog.at_level(logging.INFO, logger="smb2auth.login"):
        for status in ("STATUS_SUCCESS", "STATUS_LOGON_FAILURE", "STATUS_SUCCESS"):
            log.emit(_event(status))
    assert [e.status for e in seen] == ["STATUS_SUCCESS", "STATUS_LOGON_FAILURE", "STATUS_SUCCESS"]
    assert [e.status for e in log.events] == ["STATUS_LOGON_FAILURE", "STATUS_SUCCESS"]
    assert len(log.failures()) == 1 and len(log.successes()) == 1
    messages = [r.getMessage() for r in caplog.records if r.name == "smb2auth.login"]
    assert any("FAILED" in m and "STATUS_LOGON_FAILURE" in m and "TESTGRP\\alice" in m for m in messages)
    assert any("observer bug" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_as_dict_has_success_flag() -> None:
    data = _event().as_dict()
    assert data["success"] is True and data["dialect"] == "3.1.1" and data["user"] == "alice"


def test_flag_names_single_bits_in_definition_order() -> None:
    import enum

    from smb2auth.events import flag_names
    from smb2auth.smb2.session import SessionFlags

    class Flags(enum.IntFlag):
        A = 1
        B = 2
        ALIAS_OF_A = 1
        BOTH = 3

    assert flag_names(Flags, 3) == ("A", "B")
    assert flag_names(Flags, 4) == ()
    assert flag_names(SessionFlags, int(SessionFlags.IS_GUEST)) == ("IS_GUEST",)
