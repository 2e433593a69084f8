"""smb2auth.server: the SMB2 authentication harness (`smb2auth serve`).

`Smb2Server(ServerConfig(authority))` serves NEGOTIATE, SESSION_SETUP (SPNEGO/NTLM through the authority),
TREE_CONNECT, ECHO and LOGOFF; `protocol.Connection` is its sans-IO core.
"""

from smb2auth.server.aio import Smb2Server
from smb2auth.server.config import ServerConfig
from smb2auth.server.protocol import Connection, ServerContext
from smb2auth.smb2.negotiate import parse_dialect

__all__ = ["Connection", "ServerConfig", "ServerContext", "Smb2Server", "parse_dialect"]
