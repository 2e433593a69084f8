"""smb2auth.server"""
