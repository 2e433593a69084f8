"""A small impacket client for the client suite (impacket's smbclient.py only takes ports 139 and 445):
SMBConnection's login and a tree connect to the share, as smbclient.py's `use SHARE` does.

    python tests/conformance/impacket_client.py HOST PORT DOMAIN USER PASSWORD SHARE
"""

from __future__ import annotations

import sys


def main(host: str, port: str, domain: str, user: str, password: str, share: str) -> int:
    from impacket.smbconnection import SMBConnection

    conn = SMBConnection(host, host, sess_port=int(port), timeout=10)
    try:
        conn.login(user, password, domain)
        tree = conn.connectTree(share)
        conn.disconnectTree(tree)
        conn.logoff()
    finally:
        conn.close()
    print("connected, tree connected, logged off")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
