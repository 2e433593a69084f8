"""A throw-away Samba AD domain controller on a loopback address, for the Netlogon tests.

Our recipe (learned from Samba 4.17 on Debian bookworm): `samba-tool domain provision` with an empty
base config into a temp dir, the test user and the member-server machine account created offline, then
`samba -F` in a private mount namespace where the temp dir's run/ is bind-mounted on /run/samba (smbd
finds winbindd only there), leading its own session so that SIGTERM to its PID stops all of it. The DC
binds one address of 127.0.0.0/8 that nothing else listens on (it needs the fixed ports 445 and 135),
and stops itself after `max_runtime` seconds should the test run die without tearing it down.
`running_second_dc` joins a second DC to that domain on another loopback address (`samba-tool domain
join ... DC`, no replication service: it holds what the join copied), for the tests that spread secure
channels over several DCs and fail over between them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers import missing_peer

PACKAGES = "samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind"
PORTS = (445, 135, 389, 88)


@dataclass
class DomainController:
    """A provisioned DC: `host` (its loopback address), the domain's names, a user and a machine account."""

    base: Path
    host: str
    realm: str = "SMB2AUTH.TEST"
    domain: str = "SMB2AUTH"
    dc_name: str = "DC1"
    user: str = "alice"
    password: str = field(default="Passw0rd!", repr=False)
    machine: str = "HARNESS"
    machine_password: str = field(default="M4chine!Passw0rd-HARNESS", repr=False)
    admin_password: str = field(default="Adm1n!Passw0rd", repr=False)
    max_runtime: int = 3600
    proc: subprocess.Popen[bytes] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.base / "etc" / "smb.conf"

    @property
    def dns_domain(self) -> str:
        return self.realm.lower()

    @property
    def log(self) -> Path:
        return self.base / "log" / "samba.out"

    def tool(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `samba-tool ARGS -s smb.conf` (offline: it writes sam.ldb directly)."""
        return subprocess.run(
            ["samba-tool", *args, "-s", str(self.conf)], capture_output=True, text=True, timeout=timeout,
            check=True,
        )

    def sid(self, name: str, *, group: bool = False) -> str:
        """The objectSid of a user (or a group) as samba-tool shows it."""
        shown = self.tool("group" if group else "user", "show", name, "--attributes=objectSid").stdout
        return next(line.split(": ", 1)[1].strip() for line in shown.splitlines()
                    if line.startswith("objectSid"))

    def _options(self) -> dict[str, str]:
        run = self.base / "run"
        return {
            "interfaces": f"{self.host}/8",
            "bind interfaces only": "yes",
            "server services": "s3fs, rpc, ldap, cldap, kdc, winbindd",
            "pid directory": f"{run}",
            "ncalrpc dir": f"{run}/ncalrpc",
            "winbindd socket directory": f"{run}/winbindd",
            "ntp signd socket directory": f"{run}/ntp_signd",
            "log file": f"{self.base}/log/log.%m",
            "log level": "1",
            "load printers": "no",
            "printing": "bsd",
            "printcap name": "/dev/null",
            "disable spoolss": "yes",
            "disable netbios": "yes",
            "smb ports": "445",
            "tls enabled": "no",
            # no on-demand samba-dcerpcd: it would outlive samba and log to /var/log/samba
            "rpc start on demand helpers": "no",
        }

    def _empty_base(self) -> Path:
        (self.base / "log").mkdir(parents=True, exist_ok=True)
        (self.base / "run").mkdir(exist_ok=True)
        empty = self.base / "empty.conf"
        empty.write_text("")  # provision copies every non-default [global] of the base config otherwise
        return empty

    def provision(self) -> None:
        t0 = time.monotonic()
        empty = self._empty_base()
        argv = [
            "samba-tool", "domain", "provision", "-s", str(empty), f"--targetdir={self.base}",
            f"--realm={self.realm}", f"--domain={self.domain}", f"--host-name={self.dc_name.lower()}",
            "--server-role=dc", "--dns-backend=NONE", "--use-rfc2307", f"--adminpass={self.admin_password}",
        ] + [f"--option={k} = {v}" for k, v in self._options().items()]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"samba-tool domain provision failed:\n{(done.stdout + done.stderr)[-3000:]}")
        t1 = time.monotonic()
        self.tool("user", "create", self.user, self.password)
        self.tool("computer", "create", self.machine)
        self.tool("user", "setpassword", f"{self.machine}$", f"--newpassword={self.machine_password}")
        self.timings["provision_s"] = t1 - t0
        self.timings["accounts_s"] = time.monotonic() - t1

    def join(self, first: DomainController) -> None:
        """`samba-tool domain join ... DC`: a second DC of `first`'s domain, replicated from it (no
        replication after that: the DC runs no drepl service, so later accounts stay on `first`)."""
        t0 = time.monotonic()
        empty = self._empty_base()
        argv = [
            "samba-tool", "domain", "join", first.realm, "DC", "-s", str(empty), f"--targetdir={self.base}",
            f"--server={first.host}", f"-UAdministrator%{first.admin_password}", "--dns-backend=NONE",
            "--use-kerberos=off", f"--option=netbios name = {self.dc_name}",
        ] + [f"--option={k} = {v}" for k, v in self._options().items()]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"samba-tool domain join failed:\n{(done.stdout + done.stderr)[-3000:]}")
        self.timings["join_s"] = time.monotonic() - t0

    def start(self, timeout: float = 60.0) -> None:
        t0 = time.monotonic()
        run = self.base / "run"
        for stale in run.glob("*.pid"):
            stale.unlink()
        script = (
            'mount --bind "$1/run" /run/samba && exec samba -F --debug-stdout -M single -s "$1/etc/smb.conf"'
            ' --maximum-runtime="$2"'
        )
        Path("/run/samba").mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            # unshare -> sh -> samba is one exec chain, so proc.pid is samba's; start_new_session makes it
            # the leader of its own session and process group, which it signals itself on SIGTERM.
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(self.base),
                 str(self.max_runtime)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not all(self._listening(port) for port in PORTS):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"samba did not come up on {self.host}:\n{tail}")
            time.sleep(0.1)
        self.timings["start_s"] = time.monotonic() - t0

    def _listening(self, port: int) -> bool:
        with contextlib.suppress(OSError), socket.create_connection((self.host, port), timeout=0.5):
            return True
        return False

    def stop(self) -> None:
        """SIGTERM to samba's PID (it stops its process group), then the leftovers of its session and of
        the sessions of its daemons that named our smb.conf (winbindd makes its own), each by PID."""
        proc = self.proc
        if proc is None:
            return
        sessions = {proc.pid} | self._sessions_naming_conf()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            deadline = time.monotonic() + 5
            while (left := self._session_members(sessions)) and time.monotonic() < deadline:
                time.sleep(0.2)
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            if not left:
                break
        self.proc = None

    @staticmethod
    def _stat(entry: Path) -> list[str]:
        stat = (entry / "stat").read_text()
        return stat[stat.rindex(")") + 2:].split()

    def _sessions_naming_conf(self) -> set[int]:
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError):
                    if str(self.conf).encode() in (entry / "cmdline").read_bytes():
                        found.add(int(self._stat(entry)[3]))  # proc(5): field 6, the session id
        found.discard(os.getsid(0))  # a samba-tool of ours shares the test run's session: never that one
        return found

    @classmethod
    def _session_members(cls, sessions: set[int]) -> list[int]:
        members = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError):
                    fields = cls._stat(entry)
                    if int(fields[3]) in sessions and fields[0] != "Z":
                        members.append(int(entry.name))
        return members

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_loopback_address() -> str:
    """An address in 127.0.0.0/8 where none of the DC's ports is taken."""
    for last in range(20, 250):
        host = f"127.0.{os.getpid() % 200 + 1}.{last}"
        taken = False
        for port in PORTS:
            with socket.socket() as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    taken = True
                    break
        if not taken:
            return host
    raise RuntimeError("no free loopback address for the DC")


@contextlib.contextmanager
def running_second_dc(first: DomainController) -> Iterator[DomainController]:
    """DC2 of `first`'s domain on another loopback address, joined and started (~10 s + its start)."""
    base = Path(tempfile.mkdtemp(prefix="smb2auth-addc2-"))
    dc = DomainController(base=base, host=free_loopback_address(), realm=first.realm, domain=first.domain,
                          dc_name="DC2", user=first.user, password=first.password, machine=first.machine,
                          machine_password=first.machine_password, admin_password=first.admin_password)
    try:
        dc.join(first)
        dc.start()
        yield dc
    finally:
        dc.stop()
        shutil.rmtree(base, ignore_errors=True)


def require_addc() -> None:
    if os.geteuid() != 0:
        missing_peer("root (the DC needs a private mount namespace)")
    for program in ("samba", "samba-tool", "unshare", "smbclient"):
        if shutil.which(program) is None:
            missing_peer(f"{program} (apt-get install {PACKAGES})")
    if not Path("/usr/share/samba/setup/provision.ldif").exists():
        missing_peer(f"samba-ad-provision (apt-get install {PACKAGES})")


@contextlib.contextmanager
def running_addc() -> Iterator[DomainController]:
    require_addc()
    base = Path(tempfile.mkdtemp(prefix="smb2auth-addc-"))
    dc = DomainController(base=base, host=free_loopback_address())
    try:
        dc.provision()
        dc.start()
        yield dc
    finally:
        dc.stop()
        shutil.rmtree(base, ignore_errors=True)
