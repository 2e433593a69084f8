"""`smb2auth connect`: where the password comes from, anonymous logons (-N, -U %), and options that do not
fit together (issue 11, item 4), against the real harness in-process."""

from __future__ import annotations

import io
import json

import pytest

from smb2auth.authority import ResponseKind
from smb2auth.authority.local import LocalAuthority
from smb2auth.commands._args import PASSWORD_ENV
from smb2auth.ntlm.client import NtlmClient
from smb2auth.ntlm.messages import AuthenticateMessage, NegotiateFlags
from smb2auth.ntlm.server import NtlmServer
from smb2auth.testing import running_server
from tests.peers import Smbd
from tests.test_cli_errors import error_line, run_cli, run_main


def test_no_password_names_sources_that_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    code, out, err = run_cli("connect", "//127.0.0.1:1", "-U", "alice")  # stdin is /dev/null, not a terminal
    assert code == 1 and out == ""
    assert error_line(err) == (
        "smb2auth: no password: give it after % in -U USER%PASSWORD, on stdin (--stdin),"
        " in $SMB2AUTH_PASSWORD, or on a terminal"
    )


def test_password_on_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with running_server() as s:
        monkeypatch.setattr("sys.stdin", io.StringIO(f"{s.password}\n"))
        code, out, err = run_main(capsys, "connect", f"//127.0.0.1:{s.port}", "-U", s.username, "--stdin",
                                  "--json")
        assert code == 0, err
        assert json.loads(out)["user"] == s.username
        assert s.events[-1].success and s.events[-1].user == s.username


def test_stdin_and_a_password_in_u_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "connect", "//127.0.0.1:1", "-U", "alice%pw", "--stdin")
    assert code == 2
    assert error_line(err) == "smb2auth connect: --stdin: the password is already given after % in -U"


def test_port_in_target_and_option_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "connect", "//127.0.0.1:4445", "-p", "4446", "-U", "a%b")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert error_line(err) == "smb2auth connect: the port in //127.0.0.1:4445 and -p 4446 disagree: give one"


def test_port_in_target_and_the_same_option_agree(capsys: pytest.CaptureFixture[str]) -> None:
    with running_server() as s:
        code, out, err = run_main(capsys, "connect", f"//127.0.0.1:{s.port}", "-p", str(s.port), "-U",
                                  f"{s.username}%{s.password}", "--json")
    assert code == 0, err
    assert json.loads(out)["port"] == s.port


@pytest.mark.parametrize("max_protocol", ["2.1", "SMB2_02"])
def test_encryption_below_smb3_is_bad_input(max_protocol: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Refused before any connection: port 1 would otherwise be a run-time failure (exit 1).
    code, _, err = run_main(capsys, "connect", "//127.0.0.1:1", "-U", "a%b", "-m", max_protocol, "-e")
    assert code == 2
    assert error_line(err) == f"smb2auth connect: -e needs SMB 3.0 or above; -m {max_protocol} offers none"


@pytest.mark.parametrize("how", [("-N",), ("-U", "%"), ("-U", ""), ("--anonymous",)])
def test_anonymous_logon(how: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(allow_anonymous=True) as s:
        code, out, err = run_main(capsys, "connect", f"//127.0.0.1:{s.port}", *how)
        event = s.events[-1]
    assert code == 0, err
    assert out.startswith(f"connected to 127.0.0.1:{s.port} as anonymous\n")
    assert "session flags   IS_NULL" in out
    # What the harness saw: the MS-NLMP anonymous AUTHENTICATE, and a null session.
    assert (event.user, event.response_kind, event.anonymous, event.session_flags) == (
        "", "anonymous", True, ("IS_NULL",),
    )


def test_anonymous_refused_is_a_run_time_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with running_server() as s:
        code, _, err = run_main(capsys, "connect", f"//127.0.0.1:{s.port}", "-N")
    assert code == 1
    assert "STATUS_LOGON_FAILURE" in error_line(err)


def test_anonymous_authenticate_is_ms_nlmp_anonymous() -> None:
    # What connect -N builds (ClientConnection with ResponseKind.ANONYMOUS and no credentials).
    # MS-NLMP 3.1.5.1.2: empty user and domain, an empty NtChallengeResponse and Z(1) as the LM response.
    client = NtlmClient(version=ResponseKind.ANONYMOUS)
    negotiate = client.step(None)
    assert negotiate is not None
    challenge = NtlmServer(LocalAuthority()).step(negotiate)
    authenticate = client.step(challenge)
    assert authenticate is not None
    message = AuthenticateMessage.unpack(authenticate)
    assert (message.user, message.domain, message.nt_response, message.lm_response) == ("", "", b"", b"\x00")
    assert message.flags & NegotiateFlags.NTLMSSP_NEGOTIATE_ANONYMOUS


ANONYMOUS_ONLY = "-N is an anonymous logon: no user, password, --stdin or --pw-nt-hash with it"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("-N", "-U", "bob"), ANONYMOUS_ONLY),
        (("-N", "--pw-nt-hash"), ANONYMOUS_ONLY),
        (("-N", "--stdin"), ANONYMOUS_ONLY),
        (("-N", "-e"), "-e: an anonymous session cannot encrypt"),
        (("-U", "%secret"), "-U '%secret': no user name (-U % alone is an anonymous logon)"),
        (("-U", "DOM/"), "-U 'DOM/': no user name (-U % alone is an anonymous logon)"),
        ((), "give the account with -U [DOMAIN/]USER[%PASSWORD], or -N for an anonymous logon"),
    ],
)
def test_credentials_that_do_not_fit(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(capsys, "connect", "//127.0.0.1:1", *argv)
    assert code == 2
    assert error_line(err) == f"smb2auth connect: {message}"


@pytest.mark.interop
@pytest.mark.parametrize("dialect", ["2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"])
def test_anonymous_logon_into_smbd(smbd: Smbd, dialect: str, capsys: pytest.CaptureFixture[str]) -> None:
    # smbd accepts the anonymous AUTHENTICATE as a null session but sets no SessionFlags and does not sign:
    # the client must not ask for a signature it cannot have (MS-NLMP 3.1.5.1.2: no session key).
    code, out, err = run_main(capsys, "connect", f"//127.0.0.1:{smbd.port}", "-N", "-m", dialect,
                              "--min-protocol", dialect, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["status"], summary["dialect"], summary["user"], summary["signed"]) == (
        "STATUS_SUCCESS", dialect, "", False,
    )
    assert summary["share_type"] == "PIPE" and summary["validated_negotiate"] is None
