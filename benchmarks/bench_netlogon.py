"""Netlogon network logons per second against a Samba AD DC: NetlogonAuthority (serially, and 8 logons at
once on one secure channel) vs impacket's NRPC client doing the same calls (schannel, AES, sealed,
NetrLogonSamLogonEx, NetlogonNetworkTransitiveInformation, validation level 6), in one run.

    python benchmarks/bench_netlogon.py [--seconds N] [--rounds N] [--dc HOST]

Without --dc it provisions and starts a throw-away DC (tests/addc.py, needs root and the Samba AD DC
packages) and stops it at the end. Rounds alternate ours and impacket's; figures are the rounds' medians.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smb2auth.authority.netlogon import Endpoint, NetlogonAuthority, NetlogonConfig  # noqa: E402
from smb2auth.ntlm import crypto  # noqa: E402
from smb2auth.ntlm.authority import ResponseKind, ValidationRequest  # noqa: E402

MACHINE, MACHINE_PASSWORD, DOMAIN, DNS = "HARNESS", "M4chine!Passw0rd-HARNESS", "SMB2AUTH", "smb2auth.test"
USER, PASSWORD = "alice", "Passw0rd!"
CONCURRENCY = 8


def requests(n: int) -> list[tuple[ValidationRequest, bytes]]:
    """NTLMv2 responses as a client computes them for a CHALLENGE naming HARNESS / SMB2AUTH (MS-NLMP
    3.3.2), with the SessionBaseKey the DC must give back."""
    def av(av_id: int, value: bytes) -> bytes:
        return struct.pack("<HH", av_id, len(value)) + value

    key = crypto.ntowfv2(crypto.ntowfv1(PASSWORD), USER, DOMAIN)
    out = []
    for _ in range(n):
        challenge, client_challenge = os.urandom(8), os.urandom(8)
        filetime = int((time.time() + 11644473600) * 10_000_000)
        target = (av(2, DOMAIN.encode("utf-16-le")) + av(1, MACHINE.encode("utf-16-le"))
                  + av(7, struct.pack("<Q", filetime)) + av(0, b""))
        nt, _, base = crypto.compute_response_v2(key, challenge, client_challenge,
                                                 crypto.ntlmv2_temp(filetime, client_challenge, target))
        request = ValidationRequest(USER, DOMAIN, "CLIENTPC", challenge, b"\x00" * 24, nt, 0,
                                    ResponseKind.NTLMV2)
        out.append((request, base))
    return out


def ours(host: str, work: list[tuple[ValidationRequest, bytes]], concurrency: int,
         seconds: float) -> float:
    authority = NetlogonAuthority(NetlogonConfig((Endpoint(host),), MACHINE, MACHINE_PASSWORD, DOMAIN, DNS,
                                                 connections=concurrency))

    async def worker(offset: int, stop: float) -> int:
        done = 0
        while time.perf_counter() < stop:
            request, base = work[(offset + done * concurrency) % len(work)]
            result = await authority.validate(request)
            assert result.ok and result.session_base_key == base, result
            done += 1
        return done

    async def run() -> float:
        await authority.start()
        await worker(0, time.perf_counter() + 0.2)
        start = time.perf_counter()
        counts = await asyncio.gather(*(worker(i, start + seconds) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
        await authority.close()
        return sum(counts) / elapsed

    return asyncio.run(run())


def impacket_client(host: str) -> Callable[[ValidationRequest], bytes]:
    """impacket's NRPC client: the secure channel, then a sealed schannel association (impacket API)."""
    from impacket.dcerpc.v5 import epm, nrpc, rpcrt, transport
    from impacket.dcerpc.v5.dtypes import NULL

    binding = epm.hept_map(host, nrpc.MSRPC_UUID_NRPC, protocol="ncacn_ip_tcp")
    anonymous = transport.DCERPCTransportFactory(binding).get_dce_rpc()
    anonymous.connect()
    anonymous.bind(nrpc.MSRPC_UUID_NRPC)
    client_challenge = os.urandom(8)
    server_challenge = nrpc.hNetrServerReqChallenge(anonymous, NULL, MACHINE + "\x00",
                                                    client_challenge)["ServerChallenge"]
    session_key = nrpc.ComputeSessionKeyAES(MACHINE_PASSWORD, client_challenge, server_challenge)
    credential = nrpc.ComputeNetlogonCredentialAES(client_challenge, session_key)
    nrpc.hNetrServerAuthenticate3(anonymous, NULL, MACHINE + "$\x00",
                                  nrpc.NETLOGON_SECURE_CHANNEL_TYPE.WorkstationSecureChannel,
                                  MACHINE + "\x00", credential, 0x612FFFFF)
    anonymous.disconnect()
    dce = transport.DCERPCTransportFactory(binding).get_dce_rpc()
    dce.set_credentials(MACHINE + "$", "", DOMAIN)
    dce.set_auth_type(rpcrt.RPC_C_AUTHN_NETLOGON)
    dce.set_auth_level(rpcrt.RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
    dce.set_session_key(session_key)
    dce.set_aes(True)
    dce.connect()
    dce.bind(nrpc.MSRPC_UUID_NRPC)
    level = nrpc.NETLOGON_LOGON_INFO_CLASS.NetlogonNetworkTransitiveInformation

    def logon(request: ValidationRequest) -> bytes:
        call = nrpc.NetrLogonSamLogonEx()
        call["LogonServer"] = "\x00"
        call["ComputerName"] = MACHINE + "\x00"
        call["LogonLevel"] = level
        call["LogonInformation"]["tag"] = level
        info = call["LogonInformation"]["LogonNetworkTransitive"]
        info["Identity"]["LogonDomainName"] = request.domain
        info["Identity"]["ParameterControl"] = 0x820
        info["Identity"]["UserName"] = request.username
        info["Identity"]["Workstation"] = request.workstation
        info["LmChallenge"] = request.server_challenge
        info["NtChallengeResponse"] = request.nt_response
        info["LmChallengeResponse"] = request.lm_response
        call["ValidationLevel"] = 6
        call["ExtraFlags"] = 0
        answer = dce.request(call)
        return bytes(answer["ValidationInformation"]["ValidationSam4"]["UserSessionKey"])

    return logon


def impacket_rate(host: str, work: list[tuple[ValidationRequest, bytes]], seconds: float) -> float:
    # a channel of its own each round: ours, set up since, replaced impacket's at the DC
    logon = impacket_client(host)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        request, base = work[done % len(work)]
        assert logon(request) == base
        done += 1
    return done / (time.perf_counter() - start)


@contextlib.contextmanager
def domain_controller(host: str | None) -> Iterator[str]:
    if host is not None:
        yield host
        return
    from tests.addc import running_addc

    with running_addc() as dc:
        print(f"DC {dc.host}: provisioned in {dc.timings['provision_s'] + dc.timings['accounts_s']:.1f}s, "
              f"started in {dc.timings['start_s']:.1f}s")
        yield dc.host


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per round (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, alternating (default 3)")
    parser.add_argument("--dc", help="a running DC with the test suite's accounts (default: start one)")
    args = parser.parse_args()
    work = requests(400)
    with domain_controller(args.dc) as host:
        try:
            import impacket  # noqa: F401
        except ImportError:
            have_impacket = False
        else:
            have_impacket = True
        figures: dict[str, list[float]] = {"serial": [], "concurrent": [], "impacket": []}
        runs: dict[str, Callable[[], float]] = {
            "serial": lambda: ours(host, work, 1, args.seconds),
            "concurrent": lambda: ours(host, work, CONCURRENCY, args.seconds),
        }
        if have_impacket:
            runs["impacket"] = lambda: impacket_rate(host, work, args.seconds)
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                before = time.process_time()
                rate = run()
                figures[name].append(rate)
                # the client's CPU per logon (the DC is another process): ms
                cpu[name].append((time.process_time() - before) * 1000 / (rate * args.seconds))
    median = {name: statistics.median(values) for name, values in figures.items() if values}

    def line(label: str, name: str) -> None:
        rounds = ", ".join(f"{v:.0f}" for v in figures[name])
        print(f"{label:26} logons/s: {median[name]:8.0f}   (rounds: {rounds});"
              f" client CPU {statistics.median(cpu[name]):.2f} ms/logon")

    line("smb2auth serial", "serial")
    line(f"smb2auth {CONCURRENCY} concurrent", "concurrent")
    if "impacket" not in median:
        print("impacket not installed (pip install -e '.[bench]')")
        return
    line("impacket serial", "impacket")
    print(f"ratio smb2auth serial / impacket: {median['serial'] / median['impacket']:.1f}x; "
          f"{CONCURRENCY} concurrent / impacket: {median['concurrent'] / median['impacket']:.1f}x")


if __name__ == "__main__":
    main()
