"""Real peers for interop tests: a private Samba smbd on loopback, and the "missing peer" policy.

A missing peer is a skip locally and a failure when SMB2AUTH_REQUIRE_PEERS=1 (as .ci/run sets).
smbd runs in the foreground of its own session, with every directory under a temp dir, its Unix
account only inside nss_wrapper's private passwd/group files, and is torn down by PID.
"""

from __future__ import annotations

import contextlib
import glob
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

import pytest

REQUIRE_PEERS = os.environ.get("SMB2AUTH_REQUIRE_PEERS") == "1"


def missing_peer(what: str) -> None:
    """Skip, or fail when peers are required."""
    if REQUIRE_PEERS:
        pytest.fail(f"required peer missing: {what} (SMB2AUTH_REQUIRE_PEERS=1)", pytrace=False)
    pytest.skip(f"peer missing: {what}")


def require_program(name: str, *candidates: str) -> str:
    path = shutil.which(name) or next((c for c in candidates if os.access(c, os.X_OK)), None)
    if path is None:
        missing_peer(f"{name} (apt-get install samba smbclient)")
        raise AssertionError("unreachable")
    return path


def program_with(name: str, feature: str, package: str) -> str:
    """`name` on PATH whose `--version` lists `feature` (curl's NTLM, wget's +ntlm), else a missing peer."""
    path = shutil.which(name)
    if path is None:
        missing_peer(f"{name} (apt-get install {package})")
        raise AssertionError("unreachable")
    features = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    if feature not in features:
        missing_peer(f"{name} with {feature}")
    return path


def nss_wrapper() -> str:
    hits = glob.glob("/usr/lib/*/libnss_wrapper.so") + glob.glob("/usr/lib/libnss_wrapper.so")
    if not hits:
        missing_peer("libnss_wrapper.so (apt-get install libnss-wrapper)")
    return hits[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"peer exited with {proc.returncode} before listening:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"peer did not listen on 127.0.0.1:{port} within {timeout}s")


@dataclass
class Smbd:
    """A private smbd: `port`, `user`, `password`, `share`, `base` (its temp dir), `conf`."""

    base: Path
    port: int
    user: str = "alice"
    password: str = field(default="Passw0rd!", repr=False)
    share: str = "share"
    workgroup: str = "TESTGRP"
    extra_global: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.base / "etc" / "smb.conf"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            LD_PRELOAD=nss_wrapper(),
            NSS_WRAPPER_PASSWD=str(self.base / "etc" / "passwd"),
            NSS_WRAPPER_GROUP=str(self.base / "etc" / "group"),
        )
        return env

    def write_config(self) -> None:
        b = self.base
        for d in ("etc", "lock", "state", "cache", "private", "pid", "log", "ncalrpc", self.share):
            (b / d).mkdir(parents=True, exist_ok=True)
        (b / "private").chmod(0o700)
        (b / self.share).chmod(0o1777)
        (b / self.share / "hello.txt").write_text("hello\n")
        (b / "etc" / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            f"{self.user}:x:10001:10001:{self.user}:{b / self.share}:/bin/false\n"
        )
        (b / "etc" / "group").write_text(f"root:x:0:\nnogroup:x:65534:\n{self.user}:x:10001:\n")
        self.conf.write_text(
            f"""[global]
  workgroup = {self.workgroup}
  netbios name = PEERSMBD
  server role = standalone server
  security = user
  map to guest = never
  passdb backend = tdbsam:{b}/private/passdb.tdb
  private dir = {b}/private
  lock directory = {b}/lock
  state directory = {b}/state
  cache directory = {b}/cache
  pid directory = {b}/pid
  ncalrpc dir = {b}/ncalrpc
  log file = {b}/log/log.%m
  max log size = 0
  log level = 1
  interfaces = 127.0.0.1
  bind interfaces only = yes
  smb ports = {self.port}
  disable netbios = yes
  disable spoolss = yes
  load printers = no
  printcap name = /dev/null
  kernel oplocks = no
  ntlm auth = ntlmv2-only
  server min protocol = SMB2_02
  server max protocol = SMB3_11
{self.extra_global}
[{self.share}]
  path = {b / self.share}
  read only = no
  valid users = {self.user}
"""
        )

    def start(self, timeout: float = 30.0) -> None:
        smbd = require_program("smbd", "/usr/sbin/smbd")
        smbpasswd = require_program("smbpasswd", "/usr/bin/smbpasswd")
        self.write_config()
        subprocess.run(
            [smbpasswd, "-c", str(self.conf), "-a", "-s", self.user],
            input=f"{self.password}\n{self.password}\n".encode(),
            env=self.env, check=True, capture_output=True, timeout=60,
        )
        log = self.base / "log" / "smbd.stdout"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [smbd, "-F", "--no-process-group", "-s", str(self.conf), "--debug-stdout"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.env, start_new_session=True,
            )
        try:
            wait_for_port(self.port, self.proc, timeout, log)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop smbd, its per-connection children (its process group) and samba-dcerpcd, by PID."""
        if self.proc is not None and self.proc.poll() is None:
            pgid = self.proc.pid
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
        for name in ("samba-dcerpcd.pid", "winbindd.pid"):
            pidfile = self.base / "pid" / name
            with contextlib.suppress(OSError, ValueError, ProcessLookupError, PermissionError):
                pid = int(pidfile.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if str(self.conf).encode() in cmdline:
                    os.kill(pid, signal.SIGTERM)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGTERM)

    def log_text(self) -> str:
        logs = sorted(p for p in (self.base / "log").glob("*") if p.is_file())
        return "\n".join(p.read_text(errors="replace") for p in logs)


@contextlib.contextmanager
def running_smbd(extra_global: str = "") -> Iterator[Smbd]:
    """smbd in its own temp dir (not pytest's: that is 0700, and the share must be reachable by the
    user smbd switches to)."""
    base = Path(tempfile.mkdtemp(prefix="smb2auth-smbd-"))
    base.chmod(0o755)
    server = Smbd(base=base, port=free_port(), extra_global=extra_global)
    try:
        try:
            server.start()
        except RuntimeError as exc:
            # free_port() closes its socket before smbd binds: another process may take the port in between.
            if "Address already in use" not in str(exc) + server.log_text():
                raise
            server.port = free_port()
            server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
