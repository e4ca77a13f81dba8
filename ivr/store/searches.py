"""Saved searches: a console user's named call list filters, each the list's query string.

Stored per user and seen only by that user. The query string is encrypted with the store's key (AES-256-GCM,
bound to the user), as it may hold a caller's number or words from a transcript.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update

from ivr.call import privacy
from ivr.errors import IvrError
from ivr.store import schema
from ivr.store.db import Store, utc

MAX_NAME_CHARS = 80
MAX_QUERY_CHARS = 4000
MAX_PER_USER = 100


class SavedSearches:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _seal(self, user_id: int, query: str) -> bytes:
        return privacy.encrypt(query.encode(), self.store.config.key(), f"saved-search:{user_id}".encode())

    def _open(self, user_id: int, blob: bytes) -> str:
        return privacy.decrypt(bytes(blob), self.store.config.key(), f"saved-search:{user_id}".encode()).decode()

    def save(self, user_id: int, name: str, query: str) -> int:
        """Save `query` under `name` for the user (the user's search of that name is replaced); its id."""
        name = " ".join(name.split())
        if not 1 <= len(name) <= MAX_NAME_CHARS:
            raise IvrError(f"a saved search's name is 1-{MAX_NAME_CHARS} characters")
        if len(query) > MAX_QUERY_CHARS:
            raise IvrError(f"a saved search is at most {MAX_QUERY_CHARS} characters of query")
        s = schema.saved_searches
        sealed = self._seal(user_id, query)
        with self.store.engine.begin() as conn:
            mine = and_(s.c.user_id == user_id, s.c.name == name)
            found = conn.execute(select(s.c.id).where(mine)).scalar()
            if found is not None:
                conn.execute(update(s).where(s.c.id == found).values(query=sealed, created_at=datetime.now(UTC)))
                return int(found)
            count = conn.execute(select(func.count()).select_from(s).where(s.c.user_id == user_id)).scalar_one()
            if count >= MAX_PER_USER:
                raise IvrError(f"at most {MAX_PER_USER} saved searches a user: delete one first")
            result = conn.execute(s.insert().values(user_id=user_id, name=name, query=sealed,
                                                    created_at=datetime.now(UTC)))
            return _new_id(result.inserted_primary_key)

    def of_user(self, user_id: int) -> list[dict[str, Any]]:
        """The user's saved searches, by name: id, name, query, created_at."""
        s = schema.saved_searches
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(s).where(s.c.user_id == user_id).order_by(s.c.name)).mappings().all()
        return [{"id": r["id"], "name": r["name"], "query": self._open(user_id, r["query"]),
                 "created_at": utc(r["created_at"])} for r in rows]

    def delete(self, user_id: int, search_id: int) -> str | None:
        """Delete the user's own saved search; its name, or None when the user has no search of that id
        (another user's search is left alone)."""
        s = schema.saved_searches
        mine = and_(s.c.id == search_id, s.c.user_id == user_id)
        with self.store.engine.begin() as conn:
            name = conn.execute(select(s.c.name).where(mine)).scalar()
            if name is None:
                return None
            conn.execute(delete(s).where(mine))
        return str(name)


def _new_id(key: Any) -> int:
    assert key is not None, "the insert gave no key"
    return int(key[0])
