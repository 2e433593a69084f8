"""`smb2auth decode`: registered from the decoder's own module until the decode package lands here."""

from smb2auth.decode import register

__all__ = ["register"]
