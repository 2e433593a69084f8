"""Build the seed corpus in fixtures/fuzz/<target>/: captured frames (fixtures/smb2, fixtures/spnego) and NTLM
messages our own client and server generate (every response kind, anonymous, OEM, without MIC).

    python -m fuzz.corpus            # (re)writes fixtures/fuzz/
"""

from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path

from fuzz.harnesses import DOMAIN, PASSWORD, USER, server_script
from smb2auth.authority.local import LocalAuthority
from smb2auth.ntlm.authority import ResponseKind
from smb2auth.ntlm.client import NtlmClient
from smb2auth.ntlm.server import NtlmPolicy, NtlmServer, TargetInfo
from smb2auth.smb2.framing import frame
from smb2auth.smb2.header import HEADER_SIZE

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CORPUS = FIXTURES / "fuzz"


def _hex_files(directory: Path) -> list[tuple[str, bytes]]:
    return [(f"{p.parent.name}_{p.stem}", bytes.fromhex(p.read_text().strip()))
            for p in sorted(directory.glob("*.hex"))]


def captured_smb2() -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for directory in sorted(p for p in (FIXTURES / "smb2").iterdir() if p.is_dir() and p.name != "pcap"):
        found.extend(_hex_files(directory))
    return found


def captured_spnego() -> list[tuple[str, bytes]]:
    return _hex_files(FIXTURES / "spnego")


def ntlm_messages() -> list[tuple[str, bytes]]:
    """NEGOTIATE, CHALLENGE and AUTHENTICATE of complete handshakes, one per client variant."""
    authority = LocalAuthority(DOMAIN)
    authority.add_user(USER, PASSWORD)
    policy = NtlmPolicy(allow_anonymous=True, allow_ntlmv1=True, allow_lm=True)
    variants: list[tuple[str, dict[str, object]]] = [
        ("v2", {}),
        ("v2_nomic", {"send_mic": False}),
        ("v2_nokex", {"key_exchange": False}),
        ("v2_oem", {"oem": True}),
        ("v2_cbt", {"channel_bindings": b"\x00" * 16}),
        ("v1_ess", {"version": ResponseKind.NTLMV1_ESS}),
        ("v1", {"version": ResponseKind.NTLMV1}),
        ("lm", {"version": ResponseKind.LM}),
        ("anonymous", {"anonymous": True}),
    ]
    found: list[tuple[str, bytes]] = []
    for name, options in variants:
        client = NtlmClient(USER, PASSWORD, domain=DOMAIN, workstation="WS1", **options)  # type: ignore[arg-type]
        server = NtlmServer(authority, target=TargetInfo(nb_domain=DOMAIN), policy=policy)
        negotiate = client.step(None) or b""
        challenge = server.step(negotiate) or b""
        authenticate = client.step(challenge) or b""
        found += [(f"negotiate_{name}", negotiate), (f"challenge_{name}", challenge),
                  (f"authenticate_{name}", authenticate)]
    return found


def seeds() -> dict[str, list[tuple[str, bytes]]]:
    ntlm = ntlm_messages()
    smb2 = captured_smb2()
    spnego = captured_spnego()
    script = server_script()
    by_kind = {kind: [(n, d) for n, d in ntlm if n.startswith(kind)]
               for kind in ("negotiate", "challenge", "authenticate")}
    smb2_seeds = [(f"{n}_sel{s}", bytes([s]) + d) for n, d in smb2 for s in (2,)] + smb2
    server_seeds: list[tuple[str, bytes]] = [
        ("stream_negotiate", b"\x00" + frame(script.negotiate)),
        ("stream_negotiate_setup", b"\x00" + frame(script.negotiate) + frame(script.setup1)),
        ("payload_negotiate", b"\x09" + script.negotiate),
        ("payload_setup1", b"\x0b" + script.setup1),
        ("payload_setup2", b"\x0d" + script.setup2),
        ("authenticate_token", b"\x14" + script.setup2[HEADER_SIZE + 24 :]),
    ]
    for n, d in smb2:
        if "_c2s_" not in n:
            continue
        if "NEGOTIATE" in n and "SESSION" not in n:
            server_seeds.append((f"stream_{n}", b"\x00" + frame(d)))
            server_seeds.append((f"payload_{n}", b"\x09" + d))
        else:
            # After a replayed login (prefix 3), MessageId fixed up: reaches TREE_CONNECT, IOCTL, ...
            server_seeds.append((f"logged_in_{n}", b"\x0f" + d))
            server_seeds.append((f"sealed_{n}", b"\x2f" + d))
            server_seeds.append((f"negotiated_{n}", b"\x0b" + d))
    decode_seeds = [(n, d) for n, d in ntlm] + spnego + smb2
    decode_seeds += [(f"{n}_text", b"\x01" + d.hex().encode()) for n, d in spnego[:2]]
    decode_seeds.append(("header_line", b"WWW-Authenticate: NTLM " + base64.b64encode(ntlm[1][1])))
    return {
        "ntlm_negotiate": by_kind["negotiate"],
        "ntlm_challenge": by_kind["challenge"],
        "ntlm_authenticate": by_kind["authenticate"],
        "spnego": spnego,
        "smb2_message": smb2_seeds,
        "decode": decode_seeds,
        "server": server_seeds,
    }


def write(corpus: Path = CORPUS) -> dict[str, int]:
    counts: dict[str, int] = {}
    for target, items in seeds().items():
        directory = corpus / target
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
        for name, data in items:
            digest = hashlib.sha1(data, usedforsecurity=False).hexdigest()[:10]
            (directory / f"{name}-{digest}").write_bytes(data)
        counts[target] = len(items)
    return counts


def load(target: str, corpus: Path = CORPUS) -> list[bytes]:
    """The seeds of one target, sorted by file name (deterministic)."""
    directory = corpus / target
    return [p.read_bytes() for p in sorted(directory.iterdir())] if directory.is_dir() else []


if __name__ == "__main__":
    for target, count in write().items():
        print(f"{target}: {count} seeds")
    sys.exit(0)
