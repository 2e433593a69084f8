"""A pytest plugin for tests/test_compiled.py's child run (`-p tests._expect_compiled`): the session stops
before any test unless every module smb2auth/_compiled.py lists was imported compiled."""

from __future__ import annotations

import pytest

from smb2auth._compiled import COMPILED, compiled_modules


def pytest_sessionstart(session: pytest.Session) -> None:
    done = compiled_modules()
    if done != COMPILED:
        missing = ", ".join(sorted(set(COMPILED) - set(done)))
        raise pytest.UsageError(f"expected the compiled build; interpreted: {missing}")
