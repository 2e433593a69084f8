"""Fuzz harnesses for every smb2auth parser and the server's connection handler (see fuzz/run.py)."""
