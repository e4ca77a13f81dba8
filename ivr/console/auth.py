"""Console users: scrypt password hashes (new passwords checked by ivr.console.policy), lockout after
repeated failures, server-side sessions.

A session cookie holds a random token; the database keeps only its SHA-256, with the session's
CSRF token and expiry, so logging out (or deleting the user) ends the session at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select, update

from ivr.console.policy import check_new_password
from ivr.errors import IvrError
from ivr.store import Store, schema
from ivr.store.db import utc

ROLES = ("supervisor", "admin")
DEFAULT_ROLE = "supervisor"
"""A new user gets the least power unless an admin picks more."""
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=8)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class WebSession:
    user: User
    csrf: str


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


_DUMMY_HASH = hash_password(secrets.token_hex(8))


class Users:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, name: str, role: str, password: str) -> User:
        name = name.strip()
        if not name or len(name) > 80 or any(ch.isspace() for ch in name):
            raise IvrError("a user name is 1-80 characters without spaces")
        if role not in ROLES:
            raise IvrError(f"role must be one of {', '.join(ROLES)}")
        check_new_password(password, name)
        with self.store.engine.begin() as conn:
            if conn.execute(select(schema.users.c.id).where(schema.users.c.name == name)).first():
                raise IvrError(f"user {name} exists already")
            result = conn.execute(schema.users.insert().values(
                name=name, role=role, password_hash=hash_password(password), failed_logins=0,
                created_at=datetime.now(UTC)))
            key = result.inserted_primary_key
            assert key is not None
        return User(int(key[0]), name, role)

    def list(self) -> list[dict[str, object]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(schema.users.c.name, schema.users.c.role, schema.users.c.created_at,
                                       schema.users.c.locked_until, schema.users.c.failed_logins)
                                .order_by(schema.users.c.name)).mappings().all()
        now = datetime.now(UTC)
        return [{**dict(r), "locked": bool(r["locked_until"] and utc(r["locked_until"]) > now)}  # type: ignore[operator]
                for r in rows]

    def delete(self, name: str) -> bool:
        with self.store.engine.begin() as conn:
            row = conn.execute(select(schema.users.c.id).where(schema.users.c.name == name)).first()
            if row is None:
                return False
            conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.user_id == row[0]))
            conn.execute(delete(schema.users).where(schema.users.c.id == row[0]))
        return True

    def set_role(self, name: str, role: str) -> bool:
        """A user's new role; their sessions end (they log in again with the new rights)."""
        if role not in ROLES:
            raise IvrError(f"role must be one of {', '.join(ROLES)}")
        with self.store.engine.begin() as conn:
            row = conn.execute(select(schema.users.c.id).where(schema.users.c.name == name)).first()
            if row is None:
                return False
            conn.execute(update(schema.users).where(schema.users.c.id == row[0]).values(role=role))
            conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.user_id == row[0]))
        return True

    def unlock(self, name: str) -> bool:
        """Clear a lockout (and the failed-login count) without changing the password."""
        with self.store.engine.begin() as conn:
            done = conn.execute(update(schema.users).where(schema.users.c.name == name).values(
                failed_logins=0, locked_until=None))
        return bool(done.rowcount)

    def reset_password(self, name: str, password: str) -> bool:
        """New password, lock cleared, every session of the user ended."""
        check_new_password(password, name)
        with self.store.engine.begin() as conn:
            row = conn.execute(select(schema.users.c.id).where(schema.users.c.name == name)).first()
            if row is None:
                return False
            conn.execute(update(schema.users).where(schema.users.c.id == row[0]).values(
                password_hash=hash_password(password), failed_logins=0, locked_until=None))
            conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.user_id == row[0]))
        return True

    def authenticate(self, name: str, password: str) -> tuple[User | None, str]:
        """(user, "") on success, else (None, why): "invalid" or "locked". Five failures lock for 15 min.

        Slow on purpose (one scrypt hash, whatever the case): run it off the event loop. Unknown
        names and locked accounts cost the same hash as a wrong password, so timing tells nothing.
        No transaction is held while hashing; the failure count goes up in one statement, so
        logins checked at the same time in several threads each count.
        """
        u = schema.users
        with self.store.engine.connect() as conn:
            row = conn.execute(select(u).where(u.c.name == name)).mappings().first()
        if row is None:
            verify_password(password, _DUMMY_HASH)
            return None, "invalid"
        right = verify_password(password, row["password_hash"])  # also while locked: the same work
        now = datetime.now(UTC)
        locked_until = utc(row["locked_until"])
        if locked_until is not None and locked_until > now:
            return None, "locked"
        this_user = u.c.id == row["id"]
        with self.store.engine.begin() as conn:
            if right:
                unlocked = or_(u.c.locked_until.is_(None), u.c.locked_until <= now)
                done = conn.execute(update(u).where(this_user, unlocked).values(failed_logins=0, locked_until=None))
                if not done.rowcount:  # locked (or deleted) meanwhile
                    return None, "locked"
                return User(int(row["id"]), row["name"], row["role"]), ""
            conn.execute(update(u).where(this_user).values(failed_logins=u.c.failed_logins + 1))
            failed = conn.execute(select(u.c.failed_logins).where(this_user)).scalar()
            if failed is None or failed < MAX_FAILED_LOGINS:
                return None, "invalid"
            conn.execute(update(u).where(this_user).values(failed_logins=0, locked_until=now + LOCKOUT))
        return None, "locked"

    # ---- sessions ----------------------------------------------------------------------------------

    def start_session(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        with self.store.engine.begin() as conn:
            conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.expires_at < datetime.now(UTC)))
            conn.execute(schema.web_sessions.insert().values(
                token_hash=_token_hash(token), user_id=user.id, csrf=secrets.token_urlsafe(32),
                expires_at=datetime.now(UTC) + SESSION_TTL))
        return token

    def session(self, token: str | None) -> WebSession | None:
        if not token or len(token) > 200:
            return None
        s, u = schema.web_sessions, schema.users
        with self.store.engine.connect() as conn:
            row = conn.execute(select(s.c.csrf, s.c.expires_at, u.c.id, u.c.name, u.c.role)
                               .join(u, u.c.id == s.c.user_id)
                               .where(s.c.token_hash == _token_hash(token))).mappings().first()
        if row is None or utc(row["expires_at"]) <= datetime.now(UTC):  # type: ignore[operator]
            return None
        return WebSession(User(int(row["id"]), row["name"], row["role"]), row["csrf"])

    def end_session(self, token: str | None) -> None:
        if token:
            with self.store.engine.begin() as conn:
                conn.execute(delete(schema.web_sessions).where(schema.web_sessions.c.token_hash == _token_hash(token)))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
