"""Dashboard users and sessions.

* Passwords: ``hashlib.scrypt`` (n=2**14, r=8, p=1, 32-byte key) with a random 16-byte salt
  per user, stored as ``scrypt$n$r$p$salt_hex$key_hex``; compared in constant time.
* Sessions: a random 32-byte token in an HttpOnly, SameSite=Strict cookie; the server keeps
  only its SHA-256 with an expiry (``dash_sessions``), so a leaked database holds no live token.
* Roles: ``supervisor`` (calls, agents, teams, aggregates) and ``it`` (fleet, devices,
  agents/teams/assignments registry). Both see the overview.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pacelight.errors import InputError

from pacelight_host.api.schema import ensure_schema
from pacelight_host.store import Store, iso, utcnow

log = logging.getLogger(__name__)

ROLES = ("supervisor", "it")
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
MIN_PASSWORD_CHARS = 8
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt_hex, key_hex = stored.split("$")
        if algo != "scrypt":
            return False
        key = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r),
                             p=int(p), dklen=len(key_hex) // 2, maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(key.hex(), key_hex)


# A fixed hash to spend the same time on unknown users as on known ones.
_DUMMY_HASH = hash_password("not-a-user", salt=b"\0" * 16)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True)
class User:
    username: str
    role: str


class Users:
    def __init__(self, store: Store, session_ttl_s: float = 12 * 3600.0) -> None:
        self.store = store
        self.session_ttl_s = session_ttl_s
        ensure_schema(store)

    def add(self, username: str, role: str, password: str) -> None:
        if not re.match(USERNAME_PATTERN, username or ""):
            raise InputError(f"bad user name {username!r}: letters, digits and . _ @ - (max 64)")
        if role not in ROLES:
            raise InputError(f"bad role {role!r}: use supervisor or it")
        _check_password(password)
        d = self.store.dialect
        with self.store.transaction() as conn:
            if conn.execute(d.sql("SELECT 1 FROM dash_users WHERE username = ?"), (username,)).fetchone():
                raise InputError(f"user {username!r} exists; use 'pacelight users passwd'")
            conn.execute(d.sql("INSERT INTO dash_users (username, role, pw_hash, created_at) VALUES (?, ?, ?, ?)"),
                         (username, role, hash_password(password), iso(utcnow())))

    def set_password(self, username: str, password: str) -> None:
        _check_password(password)
        d = self.store.dialect
        with self.store.transaction() as conn:
            cur = conn.execute(d.sql("UPDATE dash_users SET pw_hash = ? WHERE username = ?"),
                               (hash_password(password), username))
            if not cur.rowcount:
                raise InputError(f"no user {username!r}")
            conn.execute(d.sql("DELETE FROM dash_sessions WHERE username = ?"), (username,))  # log out everywhere

    def list(self) -> list[dict]:
        return self.store._rows("SELECT username, role, created_at FROM dash_users ORDER BY username")

    def authenticate(self, username: str, password: str) -> User | None:
        rows = self.store._rows("SELECT username, role, pw_hash FROM dash_users WHERE username = ?", (username,))
        if not rows:
            verify_password(password, _DUMMY_HASH)
            return None
        r = rows[0]
        return User(r["username"], r["role"]) if verify_password(password, r["pw_hash"]) else None

    def create_session(self, user: User, now: datetime | None = None) -> str:
        now = now or utcnow()
        token = secrets.token_urlsafe(32)
        d = self.store.dialect
        with self.store.transaction() as conn:
            conn.execute(d.sql("DELETE FROM dash_sessions WHERE expires_at < ?"), (iso(now),))
            conn.execute(d.sql("INSERT INTO dash_sessions (token_sha256, username, created_at, expires_at) "
                               "VALUES (?, ?, ?, ?)"),
                         (_token_digest(token), user.username, iso(now),
                          iso(now + timedelta(seconds=self.session_ttl_s))))
        return token

    def session_user(self, token: str | None) -> User | None:
        if not token or len(token) > 200:
            return None
        rows = self.store._rows("SELECT u.username, u.role FROM dash_sessions s JOIN dash_users u ON "
                                "u.username = s.username WHERE s.token_sha256 = ? AND s.expires_at > ?",
                                (_token_digest(token), iso(utcnow())))
        return User(rows[0]["username"], rows[0]["role"]) if rows else None

    def end_session(self, token: str | None) -> None:
        if token:
            with self.store.transaction() as conn:
                conn.execute(self.store.dialect.sql("DELETE FROM dash_sessions WHERE token_sha256 = ?"),
                             (_token_digest(token),))


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise InputError(f"password too short: at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > 1024:
        raise InputError("password too long (max 1024 characters)")
