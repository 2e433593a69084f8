"""The Python SMB2 clients of the interop matrix, one session each: run as a script, in its own process.

    python tests/interop/client_drivers.py CLIENT DIALECT HOST PORT DOMAIN USER

with the password in $SMB2AUTH_PEER_PASSWORD (never argv).
Each driver logs in, TREE_CONNECTs to IPC$ and logs off with the client's own API, and prints one JSON line of
what the client itself reports: {"dialect", "signed", "tree", "logoff"}. A failure is exit status 1 and the
client's exception on stderr. Only the peer libraries are imported here, never smb2auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

TIMEOUT = 20
NAMES = {0x0202: "2.0.2", 0x0210: "2.1", 0x0300: "3.0", 0x0302: "3.0.2", 0x0311: "3.1.1"}
CODES = {name: code for code, name in NAMES.items()}

Report = dict[str, Any]


def impacket(dialect: str, host: str, port: int, domain: str, user: str, password: str) -> Report:
    from impacket.smbconnection import SMBConnection

    conn = SMBConnection(host, host, sess_port=port, preferredDialect=CODES[dialect], timeout=TIMEOUT)
    try:
        conn.login(user, password, domain)
        tree = conn.connectTree("IPC$")
        conn.disconnectTree(tree)
        signed = conn.isSigningRequired()
        conn.logoff()
        return {"dialect": NAMES[conn.getDialect()], "signed": signed, "tree": True, "logoff": True}
    finally:
        conn.close()


def smbprotocol(dialect: str, host: str, port: int, domain: str, user: str, password: str) -> Report:
    from smbprotocol.connection import Connection
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    conn = Connection(uuid.uuid4(), host, port, require_signing=True)
    conn.connect(dialect=CODES[dialect], timeout=TIMEOUT)
    try:
        session = Session(conn, f"{domain}\\{user}", password, require_encryption=False, auth_protocol="ntlm")
        session.connect()
        tree = TreeConnect(session, rf"\\{host}\IPC$")
        tree.connect()
        tree.disconnect()
        signed = session.signing_required
        session.disconnect()
        return {"dialect": NAMES[conn.dialect], "signed": signed, "tree": True, "logoff": True}
    finally:
        conn.disconnect()


def register_session(dialect: str, host: str, port: int, domain: str, user: str, password: str) -> Report:
    """smbprotocol's high-level API: register_session negotiates the highest dialect both speak."""
    import smbclient
    from smbprotocol.tree import TreeConnect

    session = smbclient.register_session(host, username=f"{domain}\\{user}", password=password, port=port,
                                         connection_timeout=TIMEOUT, auth_protocol="ntlm",
                                         require_signing=True)
    try:
        tree = TreeConnect(session, rf"\\{host}\IPC$")
        tree.connect()
        tree.disconnect()
        return {"dialect": NAMES[session.connection.dialect], "signed": session.signing_required,
                "tree": True, "logoff": True}
    finally:
        smbclient.delete_session(host, port)  # LOGOFF of every session on the connection, then close


def aiosmb(dialect: str, host: str, port: int, domain: str, user: str, password: str) -> Report:
    from aiosmb.commons.connection.factory import SMBConnectionFactory

    scheme = "smb" + dialect.replace(".", "").ljust(3, "0")  # smb202, smb210, smb300, smb302, smb311
    secret = urllib.parse.quote(password, safe="")
    url = f"{scheme}+ntlm-password://{domain}\\{user}:{secret}@{host}:{port}/?timeout={TIMEOUT}"

    async def run() -> Report:
        conn = SMBConnectionFactory.from_url(url).get_connection()
        try:
            _, err = await conn.login()
            if err is not None:
                raise err
            tree, err = await conn.tree_connect(rf"\\{host}\IPC$")
            if err is not None:
                raise err
            _, err = await conn.tree_disconnect(tree.tree_id)
            if err is not None:
                raise err
            done, err = await conn.logoff()
            if err is not None:
                raise err
            return {"dialect": NAMES[int(conn.selected_dialect.value)], "signed": conn.signing_required,
                    "tree": True, "logoff": bool(done)}
        finally:
            await conn.terminate()

    return asyncio.run(asyncio.wait_for(run(), TIMEOUT))


def pysmb(dialect: str, host: str, port: int, domain: str, user: str, password: str) -> Report:
    """pysmb opens with an SMB1 NEGOTIATE offering "SMB 2.002" only, which the server answers with 2.0.2. Its
    TREE_CONNECT to IPC$ only happens on the way to a file: listPath opens IPC$ and then fails on the
    pipe-less root (on smbd and on the harness alike); pysmb keeps the tree in connected_trees. It has no
    LOGOFF: close() ends the connection."""
    from smb.smb_structs import OperationFailure
    from smb.SMBConnection import SMBConnection

    class Recording(SMBConnection):  # type: ignore[misc]
        """Keeps the DialectRevision of the NEGOTIATE response pysmb got (it does not keep it itself)."""

        dialect = 0

        def _updateServerInfo_SMB2(self, payload: Any) -> None:
            self.dialect = payload.dialect_revision
            super()._updateServerInfo_SMB2(payload)

    conn = Recording(user, password, "MATRIX", "SMB2AUTH", domain=domain, use_ntlm_v2=True,
                     sign_options=SMBConnection.SIGN_WHEN_REQUIRED, is_direct_tcp=True)
    try:
        if not conn.connect(host, port, timeout=TIMEOUT):
            raise RuntimeError("pysmb: login refused")
        with contextlib.suppress(OperationFailure):
            conn.listPath("IPC$", "/", timeout=TIMEOUT)
        tree = "IPC$" in conn.connected_trees
        conn.echo(b"matrix", timeout=TIMEOUT)  # signed when the session signs
        signed = conn.is_signing_active
        return {"dialect": NAMES[conn.dialect], "signed": signed, "tree": tree, "logoff": False}
    finally:
        conn.close()


DRIVERS: dict[str, Callable[[str, str, int, str, str, str], Report]] = {
    "impacket": impacket,
    "smbprotocol": smbprotocol,
    "smbprotocol-register-session": register_session,
    "aiosmb": aiosmb,
    "pysmb": pysmb,
}


def main(argv: list[str]) -> int:
    client, dialect, host, port, domain, user = argv
    try:
        report = DRIVERS[client](dialect, host, int(port), domain, user, os.environ["SMB2AUTH_PEER_PASSWORD"])
    except Exception as exc:  # the client's own failure, reported as such
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
