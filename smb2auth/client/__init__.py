"""smb2auth.client"""
