# mypy: disallow-subclassing-any=False
"""pyasn1 schemas for SPNEGO (RFC 4178 4.2, MS-SPNG 2.2) and the GSS-API token framing (RFC 2743 3.1).

These schemas are the reference: `tokens.py` has a hand-written DER fast path for the common shapes
and the tests check that both agree.
"""

from __future__ import annotations

from pyasn1.type import char, namedtype, namedval, tag, univ  # type: ignore[import-untyped]

SPNEGO = "1.3.6.1.5.5.2"
NTLMSSP = "1.3.6.1.4.1.311.2.2.10"
KRB5 = "1.2.840.113554.1.2.2"
MS_KRB5 = "1.2.840.48018.1.2.2"
NEGOEX = "1.3.6.1.4.1.311.2.2.30"
KRB5_USER2USER = "1.2.840.113554.1.2.2.3"

MECH_NAMES: dict[str, str] = {
    SPNEGO: "SPNEGO",
    NTLMSSP: "NTLMSSP",
    KRB5: "Kerberos 5",
    MS_KRB5: "MS Kerberos 5",
    NEGOEX: "NegoEx",
    KRB5_USER2USER: "Kerberos 5 user-to-user",
}

# MS-SPNG 2.2.1 / 3.2.5.2: the hintName Windows and Samba put in the server's NegTokenInit2.
IGNORE_PRINCIPAL = "not_defined_in_RFC4178@please_ignore"


def mech_name(oid: str) -> str:
    """A readable name for a mechanism OID, or the OID itself."""
    return MECH_NAMES.get(oid, oid)


def _ctx(n: int) -> tag.Tag:
    """RFC 4178 4.1: the module uses EXPLICIT tags."""
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, n)


class MechType(univ.ObjectIdentifier):
    pass


class MechTypeList(univ.SequenceOf):
    componentType = MechType()


class ContextFlags(univ.BitString):
    namedValues = namedval.NamedValues(
        ("delegFlag", 0),
        ("mutualFlag", 1),
        ("replayFlag", 2),
        ("sequenceFlag", 3),
        ("anonFlag", 4),
        ("confFlag", 5),
        ("integFlag", 6),
    )


class NegState(univ.Enumerated):
    namedValues = namedval.NamedValues(
        ("accept-completed", 0),
        ("accept-incomplete", 1),
        ("reject", 2),
        ("request-mic", 3),
    )


class NegHints(univ.Sequence):
    """MS-SPNG 2.2.1."""

    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType("hintName", char.GeneralString().subtype(explicitTag=_ctx(0))),
        namedtype.OptionalNamedType("hintAddress", univ.OctetString().subtype(explicitTag=_ctx(1))),
    )


class NegTokenInit(univ.Sequence):
    """RFC 4178 4.2.1."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("mechTypes", MechTypeList().subtype(explicitTag=_ctx(0))),
        namedtype.OptionalNamedType("reqFlags", ContextFlags().subtype(explicitTag=_ctx(1))),
        namedtype.OptionalNamedType("mechToken", univ.OctetString().subtype(explicitTag=_ctx(2))),
        namedtype.OptionalNamedType("mechListMIC", univ.OctetString().subtype(explicitTag=_ctx(3))),
    )


class NegTokenInit2(univ.Sequence):
    """MS-SPNG 2.2.1: negHints takes tag [3], so mechListMIC moves to [4]."""

    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType("mechTypes", MechTypeList().subtype(explicitTag=_ctx(0))),
        namedtype.OptionalNamedType("reqFlags", ContextFlags().subtype(explicitTag=_ctx(1))),
        namedtype.OptionalNamedType("mechToken", univ.OctetString().subtype(explicitTag=_ctx(2))),
        namedtype.OptionalNamedType("negHints", NegHints().subtype(explicitTag=_ctx(3))),
        namedtype.OptionalNamedType("mechListMIC", univ.OctetString().subtype(explicitTag=_ctx(4))),
    )


class NegTokenResp(univ.Sequence):
    """RFC 4178 4.2.2."""

    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType("negState", NegState().subtype(explicitTag=_ctx(0))),
        namedtype.OptionalNamedType("supportedMech", MechType().subtype(explicitTag=_ctx(1))),
        namedtype.OptionalNamedType("responseToken", univ.OctetString().subtype(explicitTag=_ctx(2))),
        namedtype.OptionalNamedType("mechListMIC", univ.OctetString().subtype(explicitTag=_ctx(3))),
    )


class NegotiationToken(univ.Choice):
    """RFC 4178 4.2, with MS-SPNG's NegTokenInit2 as the init alternative (a superset on the wire
    except for tag [3]; see `NegotiationTokenRfc`)."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("negTokenInit", NegTokenInit2().subtype(explicitTag=_ctx(0))),
        namedtype.NamedType("negTokenResp", NegTokenResp().subtype(explicitTag=_ctx(1))),
    )


class NegotiationTokenRfc(univ.Choice):
    """RFC 4178 4.2 exactly: negTokenInit with mechListMIC at [3]."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("negTokenInit", NegTokenInit().subtype(explicitTag=_ctx(0))),
        namedtype.NamedType("negTokenResp", NegTokenResp().subtype(explicitTag=_ctx(1))),
    )


class InitialContextToken(univ.Sequence):
    """RFC 2743 3.1: [APPLICATION 0] IMPLICIT SEQUENCE { thisMech MechType, innerContextToken ANY }."""

    tagSet = univ.Sequence.tagSet.tagImplicitly(tag.Tag(tag.tagClassApplication, tag.tagFormatConstructed, 0))
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("thisMech", MechType()),
        namedtype.NamedType("innerContextToken", univ.Any()),
    )


class SpnegoInitialContextToken(univ.Sequence):
    """`InitialContextToken` with the SPNEGO inner token typed, so one pass decodes both (pyasn1's ANY
    loses the end-of-contents octets of an indefinite-length inner token)."""

    tagSet = InitialContextToken.tagSet
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("thisMech", MechType()),
        namedtype.NamedType("innerContextToken", NegotiationToken()),
    )


class SpnegoInitialContextTokenRfc(univ.Sequence):
    """As `SpnegoInitialContextToken`, with the RFC 4178 NegTokenInit (mechListMIC at [3])."""

    tagSet = InitialContextToken.tagSet
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("thisMech", MechType()),
        namedtype.NamedType("innerContextToken", NegotiationTokenRfc()),
    )
