"""smb2auth.smb2"""
