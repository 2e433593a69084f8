"""`requests` authentication with NTLM / Negotiate (optional: requests is not a dependency).

    import requests
    from smb2auth.http.requests_auth import HttpNtlmAuth
    requests.get(url, auth=HttpNtlmAuth("alice", "secret", domain="TESTGRP"))

The handshake runs on one pooled connection: the 401's body is read and the connection released before
the next leg is sent through the same adapter. Origin authentication (401) only.
"""

from __future__ import annotations

from typing import Any

from requests.auth import AuthBase  # type: ignore[import-not-found,unused-ignore]
from requests.models import PreparedRequest, Response  # type: ignore[import-not-found,unused-ignore]

from smb2auth.http.client import ClientContext, ContextFactory, HttpAuthError, ntlm_context_factory
from smb2auth.http.headers import AuthScheme, authorization_value, find_challenge


class HttpNtlmAuth(AuthBase):  # type: ignore[misc,unused-ignore]
    """NTLM (or Negotiate with SPNEGO around NTLM) for requests, with smb2auth's NtlmClient."""

    def __init__(
        self,
        username: str,
        password: str = "",
        *,
        domain: str = "",
        workstation: str = "",
        nt_hash: bytes | None = None,
        scheme: AuthScheme | str = AuthScheme.NTLM,
        context_factory: ContextFactory | None = None,
    ) -> None:
        self.username = username
        self.domain = domain
        self.scheme = AuthScheme(scheme)
        self._factory = context_factory or ntlm_context_factory(
            username, password, domain=domain, workstation=workstation, nt_hash=nt_hash, scheme=self.scheme
        )

    def __repr__(self) -> str:
        return f"HttpNtlmAuth(username={self.username!r}, domain={self.domain!r}, scheme={self.scheme.value})"

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        context = self._factory()
        token = context.step(None)
        if token is None:
            raise HttpAuthError("the client context produced no first token")
        request.headers["Authorization"] = authorization_value(self.scheme, token)

        def hook(response: Response, **kwargs: Any) -> Response:
            return self._next_leg(context, response, **kwargs)

        request.register_hook("response", hook)  # type: ignore[no-untyped-call,unused-ignore]
        return request

    def _next_leg(self, context: ClientContext, response: Response, **kwargs: Any) -> Response:
        values = [response.headers.get("WWW-Authenticate", "")]
        challenge = find_challenge(values, self.scheme)
        if response.status_code != 401:
            if challenge:
                # RFC 4559 5: the final token (SPNEGO mechListMIC) is verified
                context.step(challenge)
            return response
        if not challenge:
            return response
        _ = response.content
        response.raw.release_conn()
        token = context.step(challenge)
        if token is None:
            raise HttpAuthError("the client context produced no token for the challenge")
        follow: PreparedRequest = response.request.copy()
        follow.headers["Authorization"] = authorization_value(self.scheme, token)
        follow.hooks = {"response": []}
        later: Response = response.connection.send(follow, **kwargs)
        later.history.append(response)
        later.request = follow
        if later.status_code != 401:
            final = find_challenge([later.headers.get("WWW-Authenticate", "")], self.scheme)
            if final:
                context.step(final)
        return later
