"""Where the call store lives and how it protects personal data: start-up settings from the environment.

| variable | default | what |
| --- | --- | --- |
| `IVR_DB_URL` | `sqlite:///calls/ivr.db` | SQLAlchemy URL: SQLite file, or `postgresql+psycopg://user@host/db` |
| `IVR_DATA_DIR` | `calls/store` | encrypted recordings live under `DATA_DIR/recordings/` |
| `IVR_RECORDING_KEY` | (unset) | AES-256 key for recordings: 64 hex digits or urlsafe base64 of 32 bytes |
| `IVR_RECORDING_KEY_FILE` | `~/.config/ivr/recording.key` | without `IVR_RECORDING_KEY`; made (0600) on first use |
| `IVR_STORE_REDACT` | `1` | redact card/account/phone numbers and e-mails in stored transcripts and events |
| `IVR_KEEP_CALL_FILES` | `0` | `ivr serve` keeps each call's plain folder after storing it (privacy risk) |
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError
from ivr.store.files import private_dir, tighten

log = logging.getLogger(__name__)

DEFAULT_DB_URL = "sqlite:///calls/ivr.db"
DEFAULT_DATA_DIR = "calls/store"
DEFAULT_KEY_FILE = "~/.config/ivr/recording.key"
KEY_BYTES = 32


@dataclass(frozen=True)
class StoreConfig:
    db_url: str = DEFAULT_DB_URL
    """SQLAlchemy database URL (SQLite by default; PostgreSQL with psycopg)."""
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    """Directory of the store's own files (encrypted recordings)."""
    recording_key: bytes | None = None
    """32-byte AES-GCM key for recordings at rest; None: read or create `key_file`."""
    key_file: Path = Path(DEFAULT_KEY_FILE)
    """Key file used when no key is given."""
    redact: bool = True
    """Redact card, account and phone numbers and e-mail addresses before anything is stored."""
    keep_call_files: bool = False
    """`ivr serve`: keep the plain per-call folder (recording.wav, events.jsonl) after the store has the call."""

    @classmethod
    def from_env(cls, db_url: str | None = None, data_dir: str | Path | None = None) -> StoreConfig:
        env = os.environ
        raw_key = env.get("IVR_RECORDING_KEY")
        return cls(db_url=db_url or env.get("IVR_DB_URL") or DEFAULT_DB_URL,
                   data_dir=Path(data_dir or env.get("IVR_DATA_DIR") or DEFAULT_DATA_DIR),
                   recording_key=parse_key(raw_key) if raw_key else None,
                   key_file=Path(env.get("IVR_RECORDING_KEY_FILE") or DEFAULT_KEY_FILE).expanduser(),
                   redact=_flag(env.get("IVR_STORE_REDACT", "1")),
                   keep_call_files=_flag(env.get("IVR_KEEP_CALL_FILES", "0")))

    def key(self) -> bytes:
        """The recording key: given, or read from the key file (created with mode 0600 if absent)."""
        if self.recording_key is not None:
            return self.recording_key
        path = self.key_file.expanduser()
        if path.exists():
            tighten(path)
            return parse_key(path.read_text(encoding="ascii").strip())
        private_dir(path.parent)
        key = secrets.token_bytes(KEY_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key.hex() + "\n")
        log.warning("created a new recording key in %s: back it up; without it recordings cannot be read", path)
        return key


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def parse_key(text: str) -> bytes:
    """64 hex digits or urlsafe base64 of 32 bytes."""
    text = text.strip()
    try:
        if len(text) == 2 * KEY_BYTES:
            key = bytes.fromhex(text)
        else:
            key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise IvrError("recording key: expected 64 hex digits or base64 of 32 bytes") from None
    if len(key) != KEY_BYTES:
        raise IvrError(f"recording key: expected {KEY_BYTES} bytes, got {len(key)}")
    return key
