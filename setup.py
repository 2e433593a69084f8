"""The build's one optional step: with SMB2AUTH_COMPILE=1 in the environment, mypyc compiles the sans-IO
cores smb2auth/_compiled.py lists (the same typed source, checked by mypy --strict, run as C extensions);
without it the package is pure Python. See README, "Compiled cores". _build/backend.py adds mypy to the
build's requirements when asked to compile."""

from __future__ import annotations

import os
import runpy

from setuptools import setup

# smb2auth/_compiled.py names the modules (and imports nothing of the package at top level).
COMPILED = [
    name.replace(".", "/") + ".py" for name in runpy.run_path("smb2auth/_compiled.py")["COMPILED"]
]


def ext_modules() -> list[object]:
    if os.environ.get("SMB2AUTH_COMPILE") != "1" or os.environ.get("SMB2AUTH_LISTING_REQUIRES"):
        return []
    from mypyc.build import mypycify

    return list(mypycify(COMPILED, opt_level="3", group_name="smb2auth_native"))


setup(ext_modules=ext_modules())
