"""Who may do what on the console: users, roles and bearer tokens from configuration.

Roles: a **viewer** sees the page; an **operator** may also pull the kill switch and promote or
roll back a model. Users come from a TOML file (``--users``, else ``TICKWISE_CONSOLE_USERS_FILE``)
or from ``TICKWISE_CONSOLE_USERS`` (``name:role:token`` entries separated by commas), never from
code. The file may keep a token's SHA-256 (``token_sha256``) instead of the token itself::

    [users.alice]
    role = "operator"
    token_sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"

    [users.bob]
    role = "viewer"
    token = "read-only-token"

The operator written into a ``ControlCommand`` is the name of the user the token belongs to,
never a name the browser sends. With no user configured nobody can send a control.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROLES = ("viewer", "operator")
USERS_ENV = "TICKWISE_CONSOLE_USERS"
USERS_FILE_ENV = "TICKWISE_CONSOLE_USERS_FILE"
MIN_TOKEN_LEN = 8


class AuthConfigError(ValueError):
    """The users configuration is unusable (bad role, short token, unreadable file)."""


@dataclass(frozen=True)
class User:
    """An authenticated console user."""

    name: str
    role: str

    @property
    def can_control(self) -> bool:
        """Whether this user may send control commands."""
        return self.role == "operator"


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token, as kept in the users file.

    Examples
    --------
    >>> hash_token("password")[:12]
    '5e884898da28'
    """
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    """The configured users, looked up by token in constant time per user.

    Examples
    --------
    >>> users = Users.from_env_value("alice:operator:s3cret-token,bob:viewer:just-looking")
    >>> users.authenticate("s3cret-token")
    User(name='alice', role='operator')
    >>> users.authenticate("wrong") is None, users.authenticate("") is None
    (True, True)
    """

    def __init__(self, entries: Mapping[str, tuple[str, str]]) -> None:
        # name -> (role, sha256 of the token)
        for name, (role, digest) in entries.items():
            if role not in ROLES:
                raise AuthConfigError(f"user {name!r}: role must be one of {ROLES}, got {role!r}")
            if len(digest) != 64:
                raise AuthConfigError(f"user {name!r}: token_sha256 must be 64 hex characters")
        self._entries = dict(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, token: str | None) -> User | None:
        """The user a bearer token belongs to, or None."""
        if not token:
            return None
        digest = hash_token(token)
        found = None
        for name, (role, expected) in self._entries.items():
            if hmac.compare_digest(digest, expected):  # compare all: no early exit to time
                found = User(name, role)
        return found

    @classmethod
    def from_env_value(cls, value: str) -> Users:
        """Parse ``name:role:token`` entries separated by commas."""
        entries: dict[str, tuple[str, str]] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, rest = item.partition(":")
            role, sep2, token = rest.partition(":")
            if not (sep and sep2 and name and token):
                raise AuthConfigError(f"{USERS_ENV}: expected name:role:token, got {name!r}:...")
            entries[name] = (role, _token_digest(name, token))
        return cls(entries)

    @classmethod
    def from_file(cls, path: str | Path) -> Users:
        """Read ``[users.<name>]`` tables with ``role`` and ``token`` or ``token_sha256``."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise AuthConfigError(f"users file {path}: {exc}") from exc
        entries: dict[str, tuple[str, str]] = {}
        for name, spec in data.get("users", {}).items():
            if not isinstance(spec, dict) or ("token" in spec) == ("token_sha256" in spec):
                raise AuthConfigError(f"user {name!r}: give exactly one of token, token_sha256")
            digest = spec.get("token_sha256") or _token_digest(name, spec["token"])
            entries[name] = (spec.get("role", "viewer"), str(digest).lower())
        return cls(entries)

    @classmethod
    def load(cls, path: str | None = None, env: Mapping[str, str] | None = None) -> Users:
        """Users from ``path``, else the users file named in the environment, else the
        environment's entries; none at all is allowed (a read-only console)."""
        env = os.environ if env is None else env
        path = path or env.get(USERS_FILE_ENV)
        if path:
            return cls.from_file(path)
        return cls.from_env_value(env.get(USERS_ENV, ""))


def _token_digest(name: str, token: str) -> str:
    if len(token) < MIN_TOKEN_LEN:
        raise AuthConfigError(f"user {name!r}: token shorter than {MIN_TOKEN_LEN} characters")
    return hash_token(token)


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header.

    Examples
    --------
    >>> bearer("Bearer abc"), bearer("Basic abc"), bearer(None)
    ('abc', None, None)
    """
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
