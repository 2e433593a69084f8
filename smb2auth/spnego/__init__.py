"""smb2auth.spnego"""
