"""tests/peers.py itself: the private smbd survives losing its port to another process."""

from __future__ import annotations

import socket

import pytest

from tests import peers


def test_running_smbd_retries_when_its_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    real_free_port = peers.free_port
    with socket.socket() as holder:
        # Bound, not listening: smbd's bind fails with EADDRINUSE, and a connect to it is refused.
        holder.bind(("127.0.0.1", 0))
        taken = holder.getsockname()[1]
        handed_out = [taken]
        monkeypatch.setattr(peers, "free_port", lambda: handed_out.pop() if handed_out else real_free_port())
        with peers.running_smbd() as smbd:
            assert smbd.port != taken and not handed_out
            assert f"port {taken}" in smbd.log_text() or "Address already in use" in smbd.log_text()
            with socket.create_connection(("127.0.0.1", smbd.port), timeout=5):
                pass
