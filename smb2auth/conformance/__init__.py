"""smb2auth.conformance: an SMB2 authentication conformance suite for any server (`smb2auth conformance`).

Each case runs on fresh connections against the server and concludes PASS, FAIL, WARN or SKIP with what it
saw (`registry`); `probe` gives the connections, `runner` runs the cases, `report` prints the results. The
groups, in the order they run: negotiate, session, ntlm, spnego, signing.
"""

from smb2auth.conformance import negotiate, ntlm, session, signing, spnego
from smb2auth.conformance.probe import Target
from smb2auth.conformance.registry import Case, Outcome, Verdict, select
from smb2auth.conformance.runner import DEFAULT_TIMEOUT, Result, run

CASES: tuple[Case, ...] = (*negotiate.CASES, *session.CASES, *ntlm.CASES, *spnego.CASES, *signing.CASES)

__all__ = ["CASES", "DEFAULT_TIMEOUT", "Case", "Outcome", "Result", "Target", "Verdict", "run", "select"]
