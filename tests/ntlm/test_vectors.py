"""MS-NLMP 4.2 test vectors, byte for byte (each test names its section)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smb2auth.ntlm import crypto
from smb2auth.ntlm.messages import AuthenticateMessage, AvId, AvPair, ChallengeMessage, Version
from smb2auth.ntlm.messages import NegotiateFlags as F
from tests.helpers import backend_in_use

# MS-NLMP 4.2.1 Common Values
USER, DOMAIN, PASSWORD, SERVER, WORKSTATION = "User", "Domain", "Password", "Server", "COMPUTER"
RANDOM_SESSION_KEY = b"\x55" * 16
TIME = 0
CLIENT_CHALLENGE = b"\xaa" * 8
SERVER_CHALLENGE = bytes.fromhex("0123456789abcdef")
PLAINTEXT = "Plaintext".encode("utf-16-le")

# MS-NLMP 4.2.2 / 4.2.3 / 4.2.4: the negotiate flags of each example.
FLAGS_V1 = 0xE2028233
FLAGS_V1_ESS = 0x820A8233
FLAGS_V2 = 0xE28A8233


@pytest.fixture(autouse=True, params=sorted(crypto.RC4_BACKENDS))
def rc4_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every vector through each RC4 library smb2auth can take it from (crypto.RC4_BACKENDS)."""
    yield from backend_in_use(request.param, crypto.rc4_backend, crypto.use_rc4_backend)


def test_4_2_2_1_1_lmowfv1() -> None:
    assert crypto.lmowfv1(PASSWORD) == bytes.fromhex("e52cac67419a9a224a3b108f3fa6cb6d")


def test_4_2_2_1_2_ntowfv1() -> None:
    assert crypto.ntowfv1(PASSWORD) == bytes.fromhex("a4f49c406510bdcab6824ee7c30fd852")


def test_4_2_2_ntlmv1_responses_and_keys() -> None:
    nt, lm, sbk = crypto.compute_response_v1(
        FLAGS_V1, crypto.ntowfv1(PASSWORD), crypto.lmowfv1(PASSWORD), SERVER_CHALLENGE, CLIENT_CHALLENGE
    )
    # 4.2.2.1.3 session base key, 4.2.2.2.1 NTLMv1 response, 4.2.2.2.2 LMv1 response
    assert sbk == bytes.fromhex("d87262b0cde4b1cb7499becccdf10784")
    assert nt == bytes.fromhex("67c43011f30298a2ad35ece64f16331c44bdbed927841f94")
    assert lm == bytes.fromhex("98def7b87f88aa5dafe2df779688a172def11c7d5ccdef13")
    lm_hash = crypto.lmowfv1(PASSWORD)
    # 4.2.2.1.4 key exchange key, and 4.2.2.2.3 encrypted session key, for each KXKEY variant
    kx = crypto.kxkey(FLAGS_V1, sbk, lm_hash, lm, SERVER_CHALLENGE, ntlmv2=False)
    assert kx == bytes.fromhex("d87262b0cde4b1cb7499becccdf10784")
    assert crypto.rc4k(kx, RANDOM_SESSION_KEY) == bytes.fromhex("518822b1b3f350c8958682ecbb3e3cb7")
    kx = crypto.kxkey(FLAGS_V1 | F.NTLMSSP_NEGOTIATE_LM_KEY, sbk, lm_hash, lm, SERVER_CHALLENGE, ntlmv2=False)
    assert kx == bytes.fromhex("b09e379f7fbecb1eaf0afdcb0383c8a0")
    assert crypto.rc4k(kx, RANDOM_SESSION_KEY) == bytes.fromhex("4cd7bb57d697ef9b549f02b8f9b37864")
    flags = FLAGS_V1 | F.NTLMSSP_REQUEST_NON_NT_SESSION_KEY
    kx = crypto.kxkey(flags, sbk, lm_hash, lm, SERVER_CHALLENGE, ntlmv2=False)
    assert kx == bytes.fromhex("e52cac67419a9a220000000000000000")
    assert crypto.rc4k(kx, RANDOM_SESSION_KEY) == bytes.fromhex("7452ca55c225a1ca04b48fae32cf56fc")


def test_4_2_2_4_gss_wrap_ntlmv1() -> None:
    key = crypto.sealkey(FLAGS_V1, RANDOM_SESSION_KEY, client=True)
    assert key == RANDOM_SESSION_KEY  # 4.2.2.4: no ESS, no LM_KEY: the key itself
    sealed, signature = crypto.seal(FLAGS_V1, crypto.rc4_init(key), None, 0, PLAINTEXT)
    assert sealed == bytes.fromhex("56fe04d861f9319af0d7238a2e3b4d457fb8")
    # 4.2.2.4 shows RandomPad before it is zeroed; 3.4.4.1 sends it as zero (as Windows and Samba do).
    assert signature == bytes.fromhex("010000000000000009dcd1df2e459d36")


def test_4_2_3_ntlmv1_with_client_challenge() -> None:
    nt, lm, sbk = crypto.compute_response_v1(
        FLAGS_V1_ESS, crypto.ntowfv1(PASSWORD), crypto.lmowfv1(PASSWORD), SERVER_CHALLENGE, CLIENT_CHALLENGE
    )
    # 4.2.3.2.1 LMv1 response, 4.2.3.2.2 NTLMv1 response, 4.2.3.1.3 key exchange key
    assert lm == CLIENT_CHALLENGE + b"\x00" * 16
    assert nt == bytes.fromhex("7537f803ae367128ca458204bde7caf81e97ed2683267232")
    kx = crypto.kxkey(FLAGS_V1_ESS, sbk, b"", lm, SERVER_CHALLENGE, ntlmv2=False)
    assert kx == bytes.fromhex("eb93429a8bd952f8b89c55b87f475edc")
    assert crypto.verify_ntlmv1(crypto.ntowfv1(PASSWORD), SERVER_CHALLENGE, nt, lm, ess=True) == sbk


def test_4_2_3_4_gss_wrap_ntlmv1_ess() -> None:
    kx = bytes.fromhex("eb93429a8bd952f8b89c55b87f475edc")
    seal_key = crypto.sealkey(FLAGS_V1_ESS, kx, client=True)
    sign_key = crypto.signkey(FLAGS_V1_ESS, kx, client=True)
    assert seal_key == bytes.fromhex("04dd7f014d8504d265a25cc86a3a7c06")
    assert sign_key == bytes.fromhex("60e799be5c72fc92922ae8ebe961fb8d")
    sealed, signature = crypto.seal(FLAGS_V1_ESS, crypto.rc4_init(seal_key), sign_key, 0, PLAINTEXT)
    assert sealed == bytes.fromhex("a02372f6530273f3aa1eb90190ce5200c99d")
    assert signature == bytes.fromhex("01000000ff2aeb52f681793a00000000")


def test_4_2_3_3_challenge_message() -> None:
    data = bytes.fromhex(
        "4e544c4d53535000020000000c000c003800000033820a820123456789abcdef"
        "00000000000000000000000000000000060070170000000f530065007200760065007200"
    )
    msg = ChallengeMessage.unpack(data)
    assert msg.flags == FLAGS_V1_ESS and msg.server_challenge == SERVER_CHALLENGE
    assert msg.target_name == SERVER and msg.target_info is None
    assert msg.version == Version(6, 0, 6000, 15)
    assert msg.pack() == data


# MS-NLMP 4.2.4.3: the CHALLENGE and AUTHENTICATE messages of the NTLMv2 example.
CHALLENGE_V2 = bytes.fromhex(
    "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef"
    "00000000000000002400240044000000060070170000000f5300650072007600"
    "6500720002000c0044006f006d00610069006e0001000c005300650072007600"
    "6500720000000000"
)
AUTHENTICATE_V2 = bytes.fromhex(
    "4e544c4d535350000300000018001800"
    "6c00000054005400840000000c000c00"
    "48000000080008005400000010001000"
    "5c00000010001000d800000035828ae2"
    "0501280a0000000f44006f006d006100"
    "69006e00550073006500720043004f00"
    "4d005000550054004500520086c35097"
    "ac9cec102554764a57cccc19aaaaaaaa"
    "aaaaaaaa68cd0ab851e51c96aabc927b"
    "ebef6a1c010100000000000000000000"
    "00000000aaaaaaaaaaaaaaaa00000000"
    "02000c0044006f006d00610069006e00"
    "01000c00530065007200760065007200"
    "0000000000000000c5dad2544fc97990"
    "94ce1ce90bc9d03e"
)


def test_4_2_4_1_ntowfv2_and_session_base_key() -> None:
    key = crypto.ntowfv2(crypto.ntowfv1(PASSWORD), USER, DOMAIN)
    assert key == bytes.fromhex("0c868a403bfd7a93a3001ef22ef02e3f")
    assert crypto.lmowfv2 is crypto.ntowfv2


def test_4_2_4_2_ntlmv2_responses() -> None:
    key = crypto.ntowfv2(crypto.ntowfv1(PASSWORD), USER, DOMAIN)
    info = ChallengeMessage.unpack(CHALLENGE_V2).target_info
    assert info is not None
    temp = crypto.ntlmv2_temp(TIME, CLIENT_CHALLENGE, AvPair.pack_all(info))
    nt, lm, sbk = crypto.compute_response_v2(key, SERVER_CHALLENGE, CLIENT_CHALLENGE, temp)
    assert lm == bytes.fromhex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")  # 4.2.4.2.1
    assert nt[:16] == bytes.fromhex("68cd0ab851e51c96aabc927bebef6a1c")  # 4.2.4.2.2
    assert sbk == bytes.fromhex("8de40ccadbc14a82f15cb0ad0de95ca3")  # 4.2.4.1.2
    assert crypto.rc4k(sbk, RANDOM_SESSION_KEY) == bytes.fromhex(
        "c5dad2544fc9799094ce1ce90bc9d03e"
    )  # 4.2.4.2.3
    nt_hash = crypto.ntowfv1(PASSWORD)
    assert crypto.verify_ntlmv2(nt_hash, USER, DOMAIN, SERVER_CHALLENGE, nt) == sbk
    assert crypto.verify_lmv2(nt_hash, USER, DOMAIN, SERVER_CHALLENGE, lm) is not None


def test_4_2_4_3_challenge_message() -> None:
    msg = ChallengeMessage.unpack(CHALLENGE_V2)
    assert msg.flags == FLAGS_V2 and msg.target_name == SERVER
    assert msg.target_info == (
        AvPair(AvId.MsvAvNbDomainName, DOMAIN.encode("utf-16-le")),
        AvPair(AvId.MsvAvNbComputerName, SERVER.encode("utf-16-le")),
    )
    assert msg.pack() == CHALLENGE_V2


def test_4_2_4_3_authenticate_message() -> None:
    msg = AuthenticateMessage.unpack(AUTHENTICATE_V2)
    assert msg.mic is None and msg.version == Version(5, 1, 2600, 15)  # payload at 72: no MIC
    assert (msg.domain, msg.user, msg.workstation) == (DOMAIN, USER, WORKSTATION)
    assert msg.flags == 0xE28A8235
    assert msg.pack() == AUTHENTICATE_V2
    key = crypto.ntowfv2(crypto.ntowfv1(PASSWORD), USER, DOMAIN)
    sbk = crypto.verify_ntlmv2(crypto.ntowfv1(PASSWORD), USER, DOMAIN, SERVER_CHALLENGE, msg.nt_response)
    assert sbk is not None and crypto.hmac_md5(key, msg.nt_response[:16]) == sbk
    assert crypto.rc4k(sbk, msg.encrypted_random_session_key) == RANDOM_SESSION_KEY


def test_4_2_4_4_gss_wrap_ntlmv2() -> None:
    flags = FLAGS_V2
    seal_key = crypto.sealkey(flags, RANDOM_SESSION_KEY, client=True)
    sign_key = crypto.signkey(flags, RANDOM_SESSION_KEY, client=True)
    assert seal_key == bytes.fromhex("59f600973cc4960a25480a7c196e4c58")
    assert sign_key == bytes.fromhex("4788dc861b4782f35d43fd98fe1a2d39")
    sealed, signature = crypto.seal(flags, crypto.rc4_init(seal_key), sign_key, 0, PLAINTEXT)
    assert sealed == bytes.fromhex("54e50165bf1936dc996020c1811b0f06fb5f")
    assert signature == bytes.fromhex("010000007fb38ec5c55d497600000000")


def test_channel_bindings_hash_tls_server_end_point() -> None:
    # Vector from the Microsoft Open Specifications blog "NTLM and Channel Binding Hash" (2013-03-26).
    cert_hash = bytes.fromhex("ea05fefecc6b0bd571dbbc5baa3ed45386d0446835f7b74c85621b9983475f95")
    expected = bytes.fromhex("6586e99d81c2fc984e47172fd4dd0310")
    assert crypto.channel_bindings_hash(crypto.tls_server_end_point(cert_hash)) == expected
    assert crypto.channel_bindings_hash(None) == b"\x00" * 16


def test_rc4_backends_give_the_same_keystream_for_any_key_length(rc4_backend: str) -> None:
    """cryptography takes only some RC4 key lengths; the others go to pycryptodome (crypto._openssl_rc4)."""
    for length in (5, 7, 8, 9, 16, 17, 33):
        key = bytes(range(1, length + 1))
        handle = crypto.rc4_init(key)
        expected = crypto.RC4_BACKENDS["pycryptodome"](key)
        assert handle(PLAINTEXT) + handle(b"\x00" * 7) == expected(PLAINTEXT) + expected(b"\x00" * 7)
