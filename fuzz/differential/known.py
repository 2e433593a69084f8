"""The disagreements with smbd we keep, each with the section that makes our answer the right one and the
test that pins it. A class not listed here is a new one: tests/hardening/test_differential.py fails on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fuzz.differential.compare import Disagreement

__all__ = ["KNOWN", "KNOWN_ANSWERS", "explain"]

_DUPLICATE = ("MS-SMB2 3.3.5.4: a second SMB2_PREAUTH_INTEGRITY_CAPABILITIES or "
              "SMB2_ENCRYPTION_CAPABILITIES context fails the NEGOTIATE with STATUS_INVALID_PARAMETER; "
              "Samba 4.17 uses the first and never looks for a second (as the conformance suite's "
              "311-duplicate-* cases record). Pinned by "
              "tests/hardening/test_differential.py::test_known_duplicate_preauth_or_encryption_fails.")
_BINDING = ("MS-SMB2 3.3.5.5: SMB2_SESSION_FLAG_BINDING on a server without multichannel fails with "
            "STATUS_REQUEST_NOT_ACCEPTED (smbd, which binds, answers STATUS_NOT_SUPPORTED for this session). "
            "Pinned by tests/hardening/test_differential.py::"
            "test_known_binding_flag_on_a_session_in_progress.")

_NO_KERBEROS = ("RFC 4178 3.2: an acceptor that supports none of the offered mechanisms fails the "
                "negotiation; the harness has no Kerberos, so a NegTokenInit offering only Kerberos gets "
                "STATUS_INVALID_PARAMETER, as a standalone smbd answers. Only the smbd of an AD DC "
                "(`--oracle addc`), which has Kerberos, picks it and refuses the token later. Pinned by "
                "tests/hardening/test_differential.py::test_known_kerberos_only_offer_is_refused.")
_KERBEROS_FIRST = ("RFC 4178 3.2: the acceptor picks the first offered mechanism it supports; the harness "
                   "has no Kerberos, so offered Kerberos then NTLM it picks NTLM and the login goes on "
                   "(password checked), as a standalone smbd does. The smbd of an AD DC (`--oracle addc`) "
                   "picks Kerberos and then refuses the NTLM token sent under it. Pinned by "
                   "tests/hardening/test_differential.py::test_known_kerberos_first_offer_goes_on_with_ntlm.")

KNOWN: dict[tuple[str, str], str] = {
    ("spnego.mech-list[krb5 only]", "we refuse what smbd accepts"): _NO_KERBEROS,
    ("spnego.mech-list[krb5 first]", "ours completes a step smbd refuses"): _KERBEROS_FIRST,
    ("smb2.context[duplicate preauth]", "we refuse what smbd accepts"): _DUPLICATE,
    ("smb2.context[duplicate encryption]", "we refuse what smbd accepts"): _DUPLICATE,
    ("smb2.setup-field[flags 1 @auth]", "status differs"): _BINDING,
    ("smb2.setup-field[flags 255 @auth]", "status differs"): _BINDING,
}

# Last answers that only one kept behaviour gives, whichever mutation led there (a flipped bit of the
# SESSION_SETUP Flags is the binding flag too): (category, ours, smbd).
KNOWN_ANSWERS: dict[tuple[str, str, str], str] = {
    ("status differs", "STATUS_REQUEST_NOT_ACCEPTED", "STATUS_NOT_SUPPORTED"): _BINDING,
}


def explain(d: Disagreement) -> str | None:
    """Why `d` is kept (the section and the pinning test), None for a new disagreement."""
    ours, smbd = (o.steps[-1][-1] if o.steps and o.steps[-1] else "" for o in (d.ours, d.smbd))
    return KNOWN.get((d.name, d.category)) or KNOWN_ANSWERS.get((d.category, ours, smbd))
