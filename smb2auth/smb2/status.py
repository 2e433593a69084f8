"""NTSTATUS codes for SMB2 (MS-ERREF 2.3.1); one enum shared with NTLM and the authority."""

from smb2auth.status import NtStatus

__all__ = ["NtStatus"]
