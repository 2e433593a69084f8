"""The suite's own settings (tests/conftest.py): nothing in it may fail on timing."""

from __future__ import annotations

from hypothesis import settings


def test_hypothesis_profile_has_no_deadline() -> None:
    assert settings.default.deadline is None
    assert settings.default.max_examples == settings.get_profile("default").max_examples


def test_per_test_settings_inherit_no_deadline() -> None:
    # What @settings(max_examples=...) on a test builds: the loaded profile with one field changed.
    assert settings(max_examples=7).deadline is None
    assert settings(max_examples=7).max_examples == 7
