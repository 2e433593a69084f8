"""TRANSFORM_HEADER checks beyond the vectors in test_vectors.py."""

from __future__ import annotations

import pytest

from smb2auth.errors import MalformedMessage
from smb2auth.smb2.crypto import TransformHeader, encrypt
from smb2auth.smb2.negotiate_contexts import Cipher


def test_transform_header_flags_must_be_one() -> None:
    # MS-SMB2 3.3.5.2.1.1 / 3.2.5.1.1.1: Flags (EncryptionAlgorithm in 3.0) other than 0x0001 -> refused.
    sealed = bytearray(encrypt(b"\xfeSMB" + bytes(60), bytes(16), Cipher.AES_128_GCM, 7, bytes(12)))
    assert TransformHeader.unpack(bytes(sealed)).session_id == 7
    sealed[42:44] = (2).to_bytes(2, "little")
    with pytest.raises(MalformedMessage) as err:
        TransformHeader.unpack(bytes(sealed))
    assert err.value.offset == 42
