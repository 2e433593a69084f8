"""smb2auth.spnego: SPNEGO (RFC 4178, MS-SPNG) around the NTLM mechanism, sans-IO."""

from smb2auth.spnego.asn1 import KRB5, KRB5_USER2USER, MS_KRB5, NEGOEX, NTLMSSP, SPNEGO, mech_name
from smb2auth.spnego.context import (
    AcceptorMech,
    MechContext,
    SpnegoClient,
    SpnegoServer,
    server_initial_token,
)
from smb2auth.spnego.tokens import (
    ContextFlags,
    NegHints,
    NegState,
    NegTokenInit,
    NegTokenResp,
    NotSpnego,
    decode,
    is_raw_ntlmssp,
    mech_types_der,
)

__all__ = [
    "KRB5",
    "KRB5_USER2USER",
    "MS_KRB5",
    "NEGOEX",
    "NTLMSSP",
    "SPNEGO",
    "AcceptorMech",
    "ContextFlags",
    "MechContext",
    "NegHints",
    "NegState",
    "NegTokenInit",
    "NegTokenResp",
    "NotSpnego",
    "SpnegoClient",
    "SpnegoServer",
    "decode",
    "is_raw_ntlmssp",
    "mech_name",
    "mech_types_der",
    "server_initial_token",
]
