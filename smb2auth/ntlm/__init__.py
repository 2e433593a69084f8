"""NTLM (MS-NLMP): wire codec, crypto, and the sans-IO client and server contexts."""

from smb2auth.ntlm import messages
from smb2auth.ntlm.client import NtlmClient
from smb2auth.ntlm.messages import AvId, NegotiateFlags
from smb2auth.ntlm.server import ChannelBindingPolicy, NtlmPolicy, NtlmServer, TargetInfo

__all__ = [
    "AvId",
    "ChannelBindingPolicy",
    "NegotiateFlags",
    "NtlmClient",
    "NtlmPolicy",
    "NtlmServer",
    "TargetInfo",
    "messages",
]
