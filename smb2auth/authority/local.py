"""An in-memory authority: users and their NT hashes, checked as a standalone Samba server does."""

from __future__ import annotations

from dataclasses import dataclass, field

from smb2auth.ntlm import crypto
from smb2auth.ntlm.authority import (
    Account,
    Authority,
    ResponseKind,
    ValidationRequest,
    ValidationResult,
)
from smb2auth.status import NtStatus


@dataclass(frozen=True)
class LocalUser:
    name: str
    nt_hash: bytes = field(repr=False)
    lm_hash: bytes | None = field(default=None, repr=False)
    domain: str | None = None
    disabled: bool = False
    locked: bool = False
    expired: bool = False
    sid: str | None = None
    groups: tuple[str, ...] = ()


class LocalAuthority(Authority):
    """Users held in memory. A standalone server accepts its users whatever domain the client names."""

    def __init__(self, domain: str = "WORKGROUP") -> None:
        self.domain = domain
        self._users: dict[str, LocalUser] = {}

    def add_user(
        self,
        name: str,
        password: str | None = None,
        *,
        nt_hash: bytes | None = None,
        lm_hash: bytes | None = None,
        domain: str | None = None,
        disabled: bool = False,
        locked: bool = False,
        expired: bool = False,
        sid: str | None = None,
        groups: tuple[str, ...] | list[str] = (),
    ) -> LocalUser:
        if nt_hash is None:
            if password is None:
                raise ValueError("a password or an NT hash is needed")
            nt_hash = crypto.ntowfv1(password)
            lm_hash = crypto.lmowfv1(password) if lm_hash is None else lm_hash
        if len(nt_hash) != 16:
            raise ValueError("an NT hash is 16 bytes")
        user = LocalUser(name, nt_hash, lm_hash, domain, disabled, locked, expired, sid, tuple(groups))
        self._users[name.casefold()] = user
        return user

    def remove_user(self, name: str) -> None:
        self._users.pop(name.casefold(), None)

    def get_user(self, name: str) -> LocalUser | None:
        return self._users.get(name.casefold())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._users

    def __len__(self) -> int:
        return len(self._users)

    def validate(self, request: ValidationRequest) -> ValidationResult:
        user = self._users.get(request.username.casefold())
        if user is None:
            return ValidationResult.failure(NtStatus.STATUS_NO_SUCH_USER, f"no user {request.username!r}")
        key = self._check(user, request)
        if key is None:
            return ValidationResult.failure(
                NtStatus.STATUS_WRONG_PASSWORD,
                f"{request.kind.value} response does not match for {user.name!r}",
            )
        # Samba checks the password first, then the account state (auth/auth_sam.c).
        if user.disabled:
            return ValidationResult.failure(NtStatus.STATUS_ACCOUNT_DISABLED, f"{user.name!r} is disabled")
        if user.locked:
            return ValidationResult.failure(
                NtStatus.STATUS_ACCOUNT_LOCKED_OUT, f"{user.name!r} is locked out"
            )
        if user.expired:
            return ValidationResult.failure(
                NtStatus.STATUS_PASSWORD_EXPIRED, f"{user.name!r} password expired"
            )
        account = Account(user.name, user.domain or self.domain, user.sid, user.groups)
        return ValidationResult.success(account, key)

    @staticmethod
    def _check(user: LocalUser, request: ValidationRequest) -> bytes | None:
        kind = request.kind
        sc = request.server_challenge
        if kind == ResponseKind.NTLMV2:
            # The NTProofStr covers the client's user name as sent, so use that spelling.
            return crypto.verify_ntlmv2(
                user.nt_hash, request.username, request.domain, sc, request.nt_response
            )
        if kind in (ResponseKind.NTLMV1, ResponseKind.NTLMV1_ESS):
            return crypto.verify_ntlmv1(
                user.nt_hash,
                sc,
                request.nt_response,
                request.lm_response,
                ess=kind == ResponseKind.NTLMV1_ESS,
            )
        if kind == ResponseKind.LM and user.lm_hash is not None:
            return crypto.verify_lm(user.lm_hash, sc, request.lm_response)
        return None
