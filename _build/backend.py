"""setuptools' PEP 517 backend, plus mypy (which carries mypyc) among a wheel build's requirements when
SMB2AUTH_COMPILE=1 asks setup.py to compile the cores."""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 -- the backend's hooks, unchanged but the one below


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    compiler = ["mypy==2.4.*"] if os.environ.get("SMB2AUTH_COMPILE") == "1" else []
    return list(_setuptools.get_requires_for_build_wheel(config_settings)) + compiler
