"""A Netlogon authority: NTLM network logons passed through to an Active Directory DC (MS-NRPC) over our
own DCE/RPC (pdu, ndr, epm, rpc), secure channel (credentials, channel) and schannel (schannel) code."""

from smb2auth.authority.netlogon.authority import (
    NetlogonAuthority,
    NetlogonConfig,
    NoLogonServers,
    netlogon_authority,
    netlogon_target_info,
    parse_endpoint,
)
from smb2auth.authority.netlogon.channel import Endpoint, SecureChannel, SecureChannelError
from smb2auth.authority.netlogon.nrpc import ValidationLevel

__all__ = [
    "Endpoint",
    "NetlogonAuthority",
    "NetlogonConfig",
    "NoLogonServers",
    "SecureChannel",
    "SecureChannelError",
    "ValidationLevel",
    "netlogon_authority",
    "netlogon_target_info",
    "parse_endpoint",
]
