"""What the SMB2 harness serves and its limits: one frozen ServerConfig per server."""

from __future__ import annotations

import functools
import math
import socket
from dataclasses import dataclass, replace

from smb2auth.ntlm.authority import AnyAuthority
from smb2auth.ntlm.server import NtlmPolicy, TargetInfo
from smb2auth.server.hostile import SCENARIO_NAMES
from smb2auth.smb2.negotiate import SMB2_DIALECTS, Dialect
from smb2auth.smb2.negotiate_contexts import Cipher
from smb2auth.smb2.policy import CIPHER_PREFERENCE

# Dialects the harness speaks, highest first (MS-SMB2 2.2.3).
SUPPORTED_DIALECTS: tuple[Dialect, ...] = tuple(reversed(SMB2_DIALECTS))


@functools.lru_cache(maxsize=1)
def host_dns_names() -> tuple[str, str]:
    """This host's DNS computer and domain names as smbd announces them (Samba get_mydnsfullname and
    get_mydnsdomname): the canonical name of gethostname() lower-cased, and what follows its first dot.
    The bare host name when it does not resolve."""
    host = socket.gethostname()
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_CANONNAME)
    except OSError:
        infos = []
    fqdn = next((info[3] for info in infos if info[3]), host).lower()
    return fqdn, fqdn.partition(".")[2]


@dataclass(frozen=True)
class ServerConfig:
    """The harness's configuration. `authority` validates every NTLM logon (sync or async).

    Limits: `max_connections` open at once (more are closed on accept), `max_pending_handshakes` across the
    server (a SESSION_SETUP beyond it gets STATUS_INSUFFICIENT_RESOURCES), `handshake_timeout` seconds from
    connect to NEGOTIATE and from a session's first SESSION_SETUP to its last, `idle_timeout` seconds without
    a frame, `max_message_size` bytes per Direct TCP frame, `max_credits` a client may hold.
    `encrypt` is Samba's "smb encrypt = required": 3.x sessions must encrypt, others are refused; without it a
    client may still choose to encrypt with one of `ciphers` (in the server's order of preference).
    `hostile` names a scenario of server/hostile.py: each connection misbehaves once on purpose and the
    login events say whether the client refused (a client silent for `hostile_wait` seconds did).
    `server_guid` None lets the ServerContext draw one from its injected RNG (one per server: workers of one
    server must be given the same). A `target` without a DNS computer name gets this host's DNS names
    (host_dns_names), as smbd's CHALLENGE carries them.
    """

    authority: AnyAuthority
    target: TargetInfo = TargetInfo(nb_domain="WORKGROUP", nb_computer="SMB2AUTH")
    policy: NtlmPolicy = NtlmPolicy()
    shares: tuple[str, ...] = ()
    allow_guest: bool = False
    allow_anonymous: bool = False
    signing_required: bool = True
    encrypt: bool = False
    ciphers: tuple[Cipher, ...] = CIPHER_PREFERENCE
    min_dialect: Dialect = Dialect.SMB2_0_2
    max_dialect: Dialect = Dialect.SMB3_1_1
    server_guid: bytes | None = None  # MS-SMB2 3.3.1.5 ServerGuid; None: drawn from the server's RNG once
    max_connections: int = 1024
    max_pending_handshakes: int = 1024
    max_pending_handshakes_per_connection: int = 4
    max_sessions_per_connection: int = 64
    max_trees_per_session: int = 64
    handshake_timeout: float = 30.0
    idle_timeout: float = 900.0
    max_message_size: int = 1024 * 1024
    max_credits: int = 8192  # smb.conf "smb2 max credits" default
    max_transact_size: int = 65536
    hostile: str | None = None  # a server/hostile.py scenario: every connection misbehaves so, once
    hostile_wait: float = 3.0  # seconds after the hostile step a client that sends nothing has refused it

    def __post_init__(self) -> None:
        if not self.target.dns_computer:
            computer, domain = host_dns_names()
            target = replace(self.target, dns_computer=computer, dns_domain=self.target.dns_domain or domain)
            object.__setattr__(self, "target", target)
        if self.server_guid is not None and len(self.server_guid) != 16:
            raise ValueError("server_guid must be 16 bytes")
        if self.min_dialect > self.max_dialect:
            raise ValueError("min_dialect is above max_dialect")
        if not self.dialects:
            raise ValueError("no supported dialect between min_dialect and max_dialect")
        for name in ("max_connections", "max_pending_handshakes", "max_pending_handshakes_per_connection",
                     "max_sessions_per_connection",
                     "max_trees_per_session", "max_credits", "max_transact_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 256 <= self.max_message_size <= 0xFFFFFF:
            raise ValueError("max_message_size must be between 256 and 0xFFFFFF")
        if self.hostile is not None and self.hostile not in SCENARIO_NAMES:
            known = ", ".join(SCENARIO_NAMES)
            raise ValueError(f"unknown hostile scenario {self.hostile!r} (one of {known})")
        for name in ("handshake_timeout", "idle_timeout", "hostile_wait"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive finite number of seconds, not {value!r}")
        if self.encrypt and self.max_dialect < Dialect.SMB3_0:
            # MS-SMB2 2.2.4: encryption is 3.x only; a 2.x-only server would refuse every session.
            raise ValueError(f"encrypt needs a max_dialect of 3.0 or above, not {self.max_dialect.name}")
        for share in self.shares:
            if not share or "\\" in share or "/" in share:
                raise ValueError(f"bad share name {share!r}")

    @property
    def dialects(self) -> tuple[Dialect, ...]:
        """The dialects the server may select, highest first."""
        return tuple(d for d in SUPPORTED_DIALECTS if self.min_dialect <= d <= self.max_dialect)

    @property
    def ntlm_policy(self) -> NtlmPolicy:
        """The NTLM policy with this server's guest and anonymous switches applied."""
        return replace(self.policy, allow_guest=self.allow_guest, allow_anonymous=self.allow_anonymous)
