"""smb2auth.ntlm"""
