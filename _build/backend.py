"""setuptools' PEP 517 backend, plus mypy (which carries mypyc) among the build's requirements when
SMB2AUTH_COMPILE=1 asks setup.py to compile the cores."""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 -- the backend's hooks, unchanged but the two below

_COMPILER = ["mypy==2.4.*"]


def _with_compiler(requires: Any, config_settings: dict[str, Any] | None) -> list[str]:
    """setuptools runs setup.py to list its requirements; mypyc is not installed yet then, so setup.py is
    told (SMB2AUTH_LISTING_REQUIRES) not to compile in that run."""
    os.environ["SMB2AUTH_LISTING_REQUIRES"] = "1"
    try:
        listed = list(requires(config_settings))
    finally:
        del os.environ["SMB2AUTH_LISTING_REQUIRES"]
    return listed + (_COMPILER if os.environ.get("SMB2AUTH_COMPILE") == "1" else [])


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return _with_compiler(_setuptools.get_requires_for_build_wheel, config_settings)


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    return _with_compiler(_setuptools.get_requires_for_build_editable, config_settings)
