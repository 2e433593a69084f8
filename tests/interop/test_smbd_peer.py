"""The smbd fixture itself: Samba accepts its own client (smbclient) with the user we created."""

from __future__ import annotations

import subprocess

from tests.peers import Smbd, require_program


def test_smbclient_logs_into_private_smbd(smbd: Smbd) -> None:
    smbclient = require_program("smbclient", "/usr/bin/smbclient")
    proc = subprocess.run(
        [smbclient, "-s", "/dev/null", f"//127.0.0.1/{smbd.share}", "-p", str(smbd.port),
         "-U", f"{smbd.user}%{smbd.password}", "--use-kerberos=off", "-m", "SMB3_11", "-c", "ls"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hello.txt" in proc.stdout
