"""The smb2auth command line: one module per command, with the shared argument helpers; main.py builds the parser."""
