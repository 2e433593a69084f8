"""Which modules a compiled build (SMB2AUTH_COMPILE=1 at install: setup.py hands these to mypyc) runs as C
extensions, and which of them this installation does. Only modules whose classes nothing outside subclasses
(mypyc refuses an interpreted subclass of a compiled class): the authority port, the events and the
adapters stay interpreted. Frozen dataclasses with ClassVars carry @quick_init, which also keeps mypyc from
making them native classes (mypyc 2.4 reads a ClassVar of a native dataclass as a field)."""

from __future__ import annotations

import importlib
import importlib.machinery

COMPILED = (
    "smb2auth._fsm",
    "smb2auth.ntlm._session",
    "smb2auth.ntlm._state",
    "smb2auth.ntlm.client",
    "smb2auth.ntlm.crypto",
    "smb2auth.ntlm.messages",
    "smb2auth.ntlm.server",
    "smb2auth.spnego._state",
    "smb2auth.spnego.context",
    "smb2auth.spnego.received",
    "smb2auth.spnego.tokens",
    "smb2auth.smb2._body",
    "smb2auth.smb2.body",
    "smb2auth.smb2.crypto",
    "smb2auth.smb2.file",
    "smb2auth.smb2.framing",
    "smb2auth.smb2.header",
    "smb2auth.smb2.ioctl",
    "smb2auth.smb2.negotiate",
    "smb2auth.smb2.negotiate_contexts",
    "smb2auth.smb2.policy",
    "smb2auth.smb2.session",
    "smb2auth.smb2.simple",
    "smb2auth.smb2.tree",
    "smb2auth.client._channel",
    "smb2auth.client._negotiate",
    "smb2auth.client._session_setup",
    "smb2auth.client._state",
    "smb2auth.client.protocol",
)


def compiled_modules() -> tuple[str, ...]:
    """The modules of COMPILED this installation imports as C extensions; () for a pure-Python install."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return tuple(
        name for name in COMPILED if (importlib.import_module(name).__file__ or "").endswith(suffixes)
    )


def build() -> str:
    """One line for version output and benchmarks: how this installation runs its sans-IO cores."""
    done = compiled_modules()
    if not done:
        return "pure Python"
    if len(done) == len(COMPILED):
        return "NTLM, SPNEGO, SMB2 and client cores compiled by mypyc"
    return f"{len(done)} of {len(COMPILED)} core modules compiled by mypyc"
