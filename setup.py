"""The build's one optional step: with SMB2AUTH_COMPILE=1 in the environment, a wheel build has mypyc compile
the sans-IO cores smb2auth/_compiled.py lists (the same typed source, checked by mypy --strict, run as C
extensions); without it, and for an sdist, the package is pure Python. See README, "Compiled cores".
_build/backend.py adds mypy to a wheel build's requirements when asked to compile."""

from __future__ import annotations

import os
import runpy
import sys

from setuptools import setup

# smb2auth/_compiled.py names the modules (and imports nothing of the package at top level).
COMPILED = [
    name.replace(".", "/") + ".py" for name in runpy.run_path("smb2auth/_compiled.py")["COMPILED"]
]
# The setuptools commands that build the extensions; listing requirements (egg_info), metadata (dist_info)
# and an sdist do not need mypyc.
BUILDS = {"build", "build_ext", "bdist_wheel", "install"}
# An editable install would leave the compiled modules beside the sources, shadowing every later edit.
EDITABLE = {"develop", "editable_wheel"}


def ext_modules() -> list[object]:
    if os.environ.get("SMB2AUTH_COMPILE") != "1":
        return []
    commands = set(sys.argv[1:])
    if commands & EDITABLE:
        raise SystemExit("SMB2AUTH_COMPILE=1 builds a wheel (pip install .), not an editable install")
    if not commands & BUILDS:
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit(
            "SMB2AUTH_COMPILE=1 needs mypyc, which comes with mypy (pip install 'mypy==2.4.*'; pip's "
            "isolated build installs it itself)"
        ) from None
    return list(mypycify(COMPILED, opt_level="3", group_name="smb2auth_native"))


setup(ext_modules=ext_modules())
