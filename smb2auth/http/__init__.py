"""NTLM / Negotiate over HTTP: 401 (WWW-Authenticate) for origins, 407 (Proxy-Authenticate) for proxies.

- `auth`: the sans-IO core, `ConnectionAuth(config, client).handle(header) -> Decision` per connection.
- `headers`: Authorization parsing, challenge building.
- `mechanisms.ntlm_http_config(authority, ...)`: an `HttpAuthConfig` backed by smb2auth's NTLM engine.
- `wsgi`: `NtlmAuthMiddleware`, `KeepAliveWSGIServer`, `running_http_server(...)`.
- `proxy`: `NtlmProxy`, `serve_proxy(...)`, `running_proxy(...)`.
- `client`: `request_with_ntlm(conn, ...)`, `open_tunnel(...)`, `TunnelHTTPConnection`.

The `http-serve` and `proxy` commands live in `smb2auth.commands`.
"""

from smb2auth.http.auth import ConnectionAuth, Decision, HttpAuthConfig, Identity, Role
from smb2auth.http.client import (
    HttpAuthError,
    TunnelHTTPConnection,
    open_tunnel,
    request_with_auth,
    request_with_ntlm,
)
from smb2auth.http.headers import AuthScheme, Credentials, TokenKind, parse_authorization
from smb2auth.http.proxy import NtlmProxy, running_proxy, serve_proxy
from smb2auth.http.wsgi import (
    CONNECTION_KEY,
    KeepAliveWSGIServer,
    NtlmAuthMiddleware,
    RunningServer,
    running_http_server,
    whoami_app,
)

__all__ = [
    "CONNECTION_KEY",
    "AuthScheme",
    "ConnectionAuth",
    "Credentials",
    "Decision",
    "HttpAuthConfig",
    "HttpAuthError",
    "Identity",
    "KeepAliveWSGIServer",
    "NtlmAuthMiddleware",
    "NtlmProxy",
    "Role",
    "RunningServer",
    "TokenKind",
    "TunnelHTTPConnection",
    "open_tunnel",
    "parse_authorization",
    "request_with_auth",
    "request_with_ntlm",
    "running_http_server",
    "running_proxy",
    "serve_proxy",
    "whoami_app",
]
