"""Our SMB2 client against Debian's smbd (tests/peers.py): every dialect signed, mandatory signing, required
encryption, refused logons; asserting what smbd reported (its responses, and `smbstatus --json`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from smb2auth.client import (
    ALL_DIALECTS,
    Cipher,
    Dialect,
    Session,
    SessionFlags,
    SigningAlgorithm,
    Smb2ClientError,
    aconnect,
    connect,
)
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.smb2.tree import ShareType
from smb2auth.status import NtStatus
from tests.peers import Smbd, require_program

pytestmark = pytest.mark.interop

# smbstatus names (Samba source3/utils/status.c) of what we expect per dialect.
SAMBA_DIALECT = {
    Dialect.SMB2_0_2: "SMB2_02",
    Dialect.SMB2_1: "SMB2_10",
    Dialect.SMB3_0: "SMB3_00",
    Dialect.SMB3_0_2: "SMB3_02",
    Dialect.SMB3_1_1: "SMB3_11",
}
# MS-SMB2 3.1.4.1: HMAC-SHA256 for 2.x, AES-CMAC for 3.0/3.0.2, negotiated (we prefer AES-GMAC) for 3.1.1.
SIGNING = {
    Dialect.SMB2_0_2: SigningAlgorithm.HMAC_SHA256,
    Dialect.SMB2_1: SigningAlgorithm.HMAC_SHA256,
    Dialect.SMB3_0: SigningAlgorithm.AES_CMAC,
    Dialect.SMB3_0_2: SigningAlgorithm.AES_CMAC,
    Dialect.SMB3_1_1: SigningAlgorithm.AES_GMAC,
}
SAMBA_SIGNING = {
    SigningAlgorithm.HMAC_SHA256: "HMAC-SHA256",
    SigningAlgorithm.AES_CMAC: "AES-128-CMAC",
    SigningAlgorithm.AES_GMAC: "AES-128-GMAC",
}
# MS-SMB2 3.2.5.2: 3.0/3.0.2 encrypt with AES-128-CCM; 3.1.1 takes the server's pick of our list (GCM first).
CIPHER = {
    Dialect.SMB3_0: Cipher.AES_128_CCM,
    Dialect.SMB3_0_2: Cipher.AES_128_CCM,
    Dialect.SMB3_1_1: Cipher.AES_128_GCM,
}
SAMBA_CIPHER = {Cipher.AES_128_CCM: "AES-128-CCM", Cipher.AES_128_GCM: "AES-128-GCM"}
SMB3 = [d for d in ALL_DIALECTS if d >= Dialect.SMB3_0]
VALIDATED = (Dialect.SMB3_0, Dialect.SMB3_0_2)
SMB2 = [d for d in ALL_DIALECTS if d < Dialect.SMB3_0]


def _ids(d: Dialect) -> str:
    return SAMBA_DIALECT[d]


def _connect(server: Smbd, dialect: Dialect | None = None, **kw: Any) -> Session:
    kw.setdefault("username", server.user)
    kw.setdefault("password", server.password)
    kw.setdefault("dialects", ALL_DIALECTS if dialect is None else (dialect,))
    return connect("127.0.0.1", server.port, timeout=20, **kw)


def _smbstatus(server: Smbd) -> dict[str, Any]:
    smbstatus = require_program("smbstatus", "/usr/bin/smbstatus")
    proc = subprocess.run(
        [smbstatus, "-s", str(server.conf), "--json"],
        capture_output=True, text=True, env=server.env, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    status: dict[str, Any] = json.loads(proc.stdout)
    return status


def _peer_session(server: Smbd, session: Session) -> dict[str, Any]:
    sessions = _smbstatus(server)["sessions"]
    ours = [s for s in sessions.values() if int(s["session_id"]) == session.session_id]
    assert len(ours) == 1, sessions
    return ours[0]


@pytest.fixture(scope="module")
def mandatory(smbd_factory: Callable[[str], Smbd]) -> Smbd:
    return smbd_factory("server signing = mandatory")


@pytest.fixture(scope="module")
def encrypting(smbd_factory: Callable[[str], Smbd]) -> Smbd:
    return smbd_factory("smb encrypt = required")


@pytest.mark.parametrize("dialect", ALL_DIALECTS, ids=_ids)
def test_each_dialect_signed(smbd: Smbd, dialect: Dialect) -> None:
    with _connect(smbd, dialect) as session:
        assert session.dialect == dialect
        assert session.session_flags == SessionFlags(0)
        assert session.signing_algorithm == SIGNING[dialect]
        assert session.cipher == CIPHER.get(dialect)
        # The final SESSION_SETUP response came signed and verified under our derived signing key.
        assert session.core.setup_response_signed
        assert session.signed
        assert not session.encrypted
        assert session.validated_negotiate is None  # no tree connected yet
        tree = session.tree_connect(smbd.share)
        assert tree.response.share_type == ShareType.DISK
        # MS-SMB2 3.2.5.5: smbd answered FSCTL_VALIDATE_NEGOTIATE_INFO, signed, matching its NEGOTIATE.
        assert session.validated_negotiate is (True if dialect in VALIDATED else None)
        echo = session.echo()
        assert echo.signed and echo.header.is_signed
        peer = _peer_session(smbd, session)
        assert peer["username"] == smbd.user
        assert peer["session_dialect"] == SAMBA_DIALECT[dialect]
        assert peer["signing"]["cipher"] == SAMBA_SIGNING[SIGNING[dialect]]
        assert peer["signing"]["degree"] != "none"
        session.tree_disconnect(tree)
        assert tree.tree_id not in session.core.trees
    assert session.core.state.value == "CLOSED"


@pytest.mark.parametrize("dialect", ALL_DIALECTS, ids=_ids)
def test_server_signing_mandatory(mandatory: Smbd, dialect: Dialect) -> None:
    with _connect(mandatory, dialect) as session:
        assert session.core.server_signing_required
        assert session.signed
        assert session.tree_connect(mandatory.share).response.share_type == ShareType.DISK
        assert session.echo().signed
        assert _peer_session(mandatory, session)["signing"]["degree"] == "full"


@pytest.mark.parametrize("dialect", SMB3, ids=_ids)
def test_encryption_required_by_server(encrypting: Smbd, dialect: Dialect) -> None:
    with _connect(encrypting, dialect) as session:
        # MS-SMB2 2.2.6: the server demands encryption of the whole session.
        assert session.session_flags == SessionFlags.ENCRYPT_DATA
        assert session.encrypted
        assert session.cipher == CIPHER[dialect]
        assert session.core.setup_response_signed
        tree = session.tree_connect(encrypting.share)
        assert tree.response.share_type == ShareType.DISK
        echo = session.echo()
        assert echo.encrypted
        assert not echo.header.is_signed  # MS-SMB2 3.3.4.1.1: encrypted responses are not signed
        peer = _peer_session(encrypting, session)
        assert peer["encryption"] == {"cipher": SAMBA_CIPHER[CIPHER[dialect]], "degree": "full"}


@pytest.mark.parametrize("dialect", SMB2, ids=_ids)
def test_encryption_required_by_server_refuses_smb2(encrypting: Smbd, dialect: Dialect) -> None:
    # smbd (smb2_sesssetup.c) denies a session it cannot encrypt: STATUS_ACCESS_DENIED at SESSION_SETUP.
    with pytest.raises(Smb2ClientError) as info:
        _connect(encrypting, dialect)
    assert info.value.status == NtStatus.STATUS_ACCESS_DENIED
    assert "SESSION_SETUP" in str(info.value)


@pytest.mark.parametrize("dialect", SMB3, ids=_ids)
def test_encryption_required_by_client(smbd: Smbd, dialect: Dialect) -> None:
    with _connect(smbd, dialect, require_encryption=True) as session:
        assert session.session_flags == SessionFlags(0)
        assert session.encrypted
        tree = session.tree_connect(smbd.share)
        assert tree.response.share_type == ShareType.DISK
        assert session.echo().encrypted
        peer = _peer_session(smbd, session)
        assert peer["encryption"]["cipher"] == SAMBA_CIPHER[CIPHER[dialect]]


@pytest.mark.parametrize("dialect", SMB2, ids=_ids)
def test_encryption_required_by_client_refused_for_smb2(smbd: Smbd, dialect: Dialect) -> None:
    with pytest.raises(Smb2ClientError) as info:
        _connect(smbd, dialect, require_encryption=True)
    assert info.value.status == NtStatus.STATUS_NOT_SUPPORTED
    assert "before SMB 3.0" in str(info.value)


def test_encryption_required_by_client_with_smb2_server_choice(smbd_factory: Callable[[str], Smbd]) -> None:
    server = smbd_factory("server max protocol = SMB2_10")
    with pytest.raises(Smb2ClientError) as info:
        _connect(server, require_encryption=True)
    assert info.value.status == NtStatus.STATUS_NOT_SUPPORTED
    assert "negotiated 2.1" in str(info.value)


def test_wrong_password(smbd: Smbd) -> None:
    with pytest.raises(Smb2ClientError) as info:
        _connect(smbd, password="not-the-password")
    assert info.value.status == NtStatus.STATUS_LOGON_FAILURE


def test_unknown_user(smbd: Smbd) -> None:
    with pytest.raises(Smb2ClientError) as info:
        _connect(smbd, username="mallory")
    assert info.value.status == NtStatus.STATUS_LOGON_FAILURE


def test_ntlmv1_refused_by_ntlmv2_only(smbd: Smbd) -> None:
    assert "ntlm auth = ntlmv2-only" in smbd.conf.read_text()
    with pytest.raises(Smb2ClientError) as info:
        _connect(smbd, ntlm_version=ResponseKind.NTLMV1)
    assert info.value.status == NtStatus.STATUS_LOGON_FAILURE


def test_nt_hash_instead_of_password(smbd: Smbd) -> None:
    from smb2auth.ntlm.crypto import ntowfv1

    with _connect(smbd, password=None, nt_hash=ntowfv1(smbd.password)) as session:
        assert session.signed
        assert session.echo().signed


def test_bad_share(smbd: Smbd) -> None:
    with _connect(smbd) as session:
        with pytest.raises(Smb2ClientError) as info:
            session.tree_connect("no-such-share")
        assert info.value.status == NtStatus.STATUS_BAD_NETWORK_NAME
        assert session.echo().signed  # the session survives a refused tree connect


@pytest.mark.parametrize("dialect", VALIDATED, ids=_ids)
@pytest.mark.parametrize("share", ["IPC$", None], ids=["ipc", "share"])
@pytest.mark.parametrize("require_signing", [True, False], ids=["signing-required", "signing-optional"])
def test_validate_negotiate(smbd: Smbd, dialect: Dialect, share: str | None, require_signing: bool) -> None:
    # Two dialects offered: smbd checks the list we repeat against its NEGOTIATE (MS-SMB2 3.3.5.15.12).
    with _connect(smbd, require_signing=require_signing, dialects=(Dialect.SMB2_1, dialect)) as session:
        assert session.core.signing_required is require_signing
        tree = session.tree_connect(share or smbd.share)
        assert session.validated_negotiate is True
        # The FSCTL went out after the TREE_CONNECT, on its tree; smbd's answer verified under our key.
        assert session.core.trees[tree.tree_id] is tree
        assert session.echo().header.status == NtStatus.STATUS_SUCCESS
        assert _peer_session(smbd, session)["session_dialect"] == SAMBA_DIALECT[dialect]


def test_validate_negotiate_turned_off(smbd: Smbd) -> None:
    with _connect(smbd, Dialect.SMB3_0_2, validate_negotiate=False) as session:
        session.tree_connect(smbd.share)
        assert session.validated_negotiate is False


def test_ipc_share(smbd: Smbd) -> None:
    with _connect(smbd) as session:
        assert session.tree_connect("IPC$").response.share_type == ShareType.PIPE


def test_aconnect(smbd: Smbd) -> None:
    async def run() -> tuple[str, bool, bool, ShareType]:
        session = await aconnect(
            "127.0.0.1", smbd.port, username=smbd.user, password=smbd.password, timeout=20
        )
        async with session:
            tree = await session.tree_connect(smbd.share)
            echo = await session.echo()
            return session.dialect_name, session.signed, echo.signed, tree.response.share_type

    assert asyncio.run(run()) == ("3.1.1", True, True, ShareType.DISK)


def test_keys_exposed_not_in_repr(smbd: Smbd) -> None:
    with _connect(smbd) as session:
        keys = (session.signing_key, session.application_key, session.session_key)
        assert all(len(k) == 16 for k in keys)
        assert len(set(keys)) == 3
        # The attribute, not __dict__: a compiled build's ClientConnection has none.
        text = repr(session) + repr(session.core._keys)
        for key in keys:
            assert key.hex() not in text and repr(key) not in text


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smb2auth.commands.main", "connect", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )


def test_cli_json(smbd: Smbd) -> None:
    user = f"TESTGRP/{smbd.user}%{smbd.password}"
    proc = _cli(f"//127.0.0.1:{smbd.port}/{smbd.share}", "-U", user, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "STATUS_SUCCESS"
    assert out["dialect"] == "3.1.1"
    assert out["signed"] is True
    assert out["signing_algorithm"] == "AES_GMAC"
    assert out["cipher"] == "AES_128_GCM"
    assert out["session_flags"] == []
    assert out["share"] == smbd.share
    assert out["tree_id"] > 0 and out["session_id"] > 0
    assert out["validated_negotiate"] is None  # 3.1.1: preauth integrity instead


@pytest.mark.parametrize(("extra", "expected"), [((), True), (("--no-validate-negotiate",), False)])
def test_cli_json_validated_negotiate(smbd: Smbd, extra: tuple[str, ...], expected: bool) -> None:
    user = f"TESTGRP/{smbd.user}%{smbd.password}"
    proc = _cli(f"//127.0.0.1:{smbd.port}/{smbd.share}", "-U", user, "-m", "3.0.2", "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["dialect"] == "3.0.2" and out["validated_negotiate"] is expected


def test_cli_max_protocol_and_ipc(smbd: Smbd) -> None:
    proc = _cli(
        "//127.0.0.1/", "-p", str(smbd.port), "-U", f"TESTGRP\\{smbd.user}", "-m", "SMB2_10", "--json",
        env={"SMB2AUTH_PASSWORD": smbd.password},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["dialect"], out["signing_algorithm"], out["cipher"]) == ("2.1", "HMAC_SHA256", None)
    assert out["share"] == "IPC$" and out["share_type"] == "PIPE"
    assert out["validated_negotiate"] is None


def test_cli_summary(smbd: Smbd) -> None:
    proc = _cli(f"//127.0.0.1:{smbd.port}/{smbd.share}", "-U", f"{smbd.user}%{smbd.password}", "-m", "3.0")
    assert proc.returncode == 0, proc.stderr
    assert "SMB 3.0" in proc.stdout and "AES_CMAC" in proc.stdout and "logoff          ok" in proc.stdout
    assert "validated       yes" in proc.stdout


def test_cli_bad_password(smbd: Smbd) -> None:
    proc = _cli(f"//127.0.0.1:{smbd.port}/{smbd.share}", "-U", f"{smbd.user}%wrong")
    assert proc.returncode != 0
    assert "STATUS_LOGON_FAILURE" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_cli_unreachable() -> None:
    proc = _cli("//127.0.0.1:1/share", "-U", "alice%x", "--timeout", "5")
    assert proc.returncode != 0
    assert "cannot reach" in proc.stderr and "Traceback" not in proc.stderr
