"""What every connection of one server shares: the configuration, the login events' sink, the injected
clock and RNG, the global session table and the handshake budget, and the constants derived once."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from smb2auth.events import EventLog
from smb2auth.server.config import ServerConfig
from smb2auth.server.sessions import GlobalSessions, ServerSession
from smb2auth.smb2.negotiate import SecurityMode
from smb2auth.spnego.context import server_initial_token

__all__ = ["ServerContext"]


class ServerContext:
    """Shared by the connections of one server. `events` is where transports put the login events the
    connections return; nothing in the sans-IO core writes to it."""

    def __init__(
        self,
        config: ServerConfig,
        events: EventLog | None = None,
        *,
        rng: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.events = events if events is not None else EventLog()
        self.rng = rng
        self.clock = clock
        self.monotonic = monotonic
        self.global_sessions = GlobalSessions(rng)
        # MS-SMB2 3.3.1.5: ServerGuid, one per server.
        self.server_guid = config.server_guid if config.server_guid is not None else rng(16)
        self.initial_token = server_initial_token()
        self.ntlm_policy = config.ntlm_policy
        self.shares = {name.casefold(): name for name in config.shares}
        self.security_mode = SecurityMode.SIGNING_ENABLED | (
            SecurityMode.SIGNING_REQUIRED if config.signing_required else SecurityMode(0)
        )

    @property
    def sessions(self) -> dict[int, ServerSession]:
        """MS-SMB2 3.3.1.5 GlobalSessionTable."""
        return self.global_sessions.table

    @property
    def pending_handshakes(self) -> int:
        return self.global_sessions.pending_handshakes
