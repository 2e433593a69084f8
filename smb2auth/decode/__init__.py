"""An annotated tree of an NTLMSSP message, a SPNEGO / GSS-API token or an SMB2 message.

`decode_input(raw)` takes what a person pastes (hex, a hex dump, base64, an HTTP auth header line, or raw
bytes) and `decode_bytes(data)` the bytes themselves; both return a `Node` tree and raise only `DecodeError`
(a `MalformedMessage` whose `offset` counts from the start of the decoded bytes). The trees are rendered
from the codecs' own objects (ntlm/messages.py, spnego/tokens.py, smb2/); tokens nested in another message
(the SMB2 security buffer, the SPNEGO mechToken) that do not parse become raw hex with a note.

sniff.py turns input into bytes and picks the message; ntlm.py, spnego.py, smb2.py and smb2_body.py build
the trees; tree.py holds `Node`; render.py writes text or JSON.
"""

from smb2auth.decode.ntlm import decode_ntlm
from smb2auth.decode.render import render_json, render_text
from smb2auth.decode.smb2 import decode_smb
from smb2auth.decode.sniff import decode_bytes, decode_input
from smb2auth.decode.spnego import decode_gss, decode_token
from smb2auth.decode.tree import DecodeError, Node

__all__ = [
    "DecodeError",
    "Node",
    "decode_bytes",
    "decode_gss",
    "decode_input",
    "decode_ntlm",
    "decode_smb",
    "decode_token",
    "render_json",
    "render_text",
]
