"""The call store: calls, turns, events and encrypted recordings (SQLite by default, PostgreSQL by URL)."""

from ivr.store.config import StoreConfig
from ivr.store.db import CallFilter, Store
from ivr.store.writer import StoreWriter

__all__ = ["CallFilter", "Store", "StoreConfig", "StoreWriter"]
