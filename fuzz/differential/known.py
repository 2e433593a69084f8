"""The disagreements with smbd we keep, each with the section that makes our answer the right one and the
test that pins it. A class not listed here is a new one: tests/hardening/test_differential.py fails on it."""

from __future__ import annotations

__all__ = ["KNOWN"]

KNOWN: dict[tuple[str, str], str] = {}
