"""A small smbprotocol client for the client suite: NEGOTIATE, SESSION_SETUP (SPNEGO, smbprotocol's default
"negotiate", which falls back to NTLM), TREE_CONNECT to the share, TREE_DISCONNECT, LOGOFF.

    python tests/conformance/smbprotocol_client.py HOST PORT DOMAIN USER PASSWORD SHARE
"""

from __future__ import annotations

import sys
import uuid


def main(host: str, port: str, domain: str, user: str, password: str, share: str) -> int:
    from smbprotocol.connection import Connection
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    conn = Connection(uuid.uuid4(), host, int(port), require_signing=True)
    conn.connect(timeout=10)
    try:
        session = Session(conn, f"{domain}\\{user}", password, require_encryption=False,
                          auth_protocol="negotiate")
        session.connect()
        tree = TreeConnect(session, rf"\\{host}\{share}")
        tree.connect()
        tree.disconnect()
        session.disconnect()
    finally:
        conn.disconnect()
    print("connected, tree connected, logged off")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
