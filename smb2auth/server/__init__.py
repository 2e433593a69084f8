"""smb2auth.server: the SMB2 authentication harness (`smb2auth serve`).

`Smb2Server(ServerConfig(authority))` serves NEGOTIATE, SESSION_SETUP (SPNEGO/NTLM through the authority),
TREE_CONNECT, ECHO and LOGOFF. Its sans-IO core: `connection.Connection` (framing, credits, signing,
sealing, dispatch) with `negotiate`, `setup` (SESSION_SETUP, LOGOFF), `trees` and `sessions` beside it;
`inline` carries a connection's events out for a synchronous authority, `aio` is the asyncio transport.
"""

from smb2auth.server.aio import Smb2Server
from smb2auth.server.config import ServerConfig
from smb2auth.server.connection import Connection
from smb2auth.server.context import ServerContext
from smb2auth.smb2.negotiate import parse_dialect

__all__ = ["Connection", "ServerConfig", "ServerContext", "Smb2Server", "parse_dialect"]
