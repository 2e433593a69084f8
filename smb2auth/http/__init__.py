"""smb2auth.http"""
