"""Intent model versions: a directory of trained candidates with their figures, the accepted one, and rollback.

    MODELS_DIR/
      current          the accepted version's name (written atomically; absent: the shipped model)
      history.jsonl    who accepted or rolled back to which version, when
      v1/ v2/ ...      a version: intents.npz, intents.json (+ intents_embed.npz), faq.yaml (when the
                       training added FAQ paraphrases), version.json (figures, status, labels, parent)

A version is written whole into a hidden folder and renamed into place, so a reader (`ivr serve` watching
`current`, the console) never sees half of one. A version's files never change; what changes is `current`.
`shipped` names the model the package ships (models/intents); it is always there to roll back to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.errors import IvrError
from models.atomicfile import atomic_write

MODELS_DIR_ENV = "IVR_MODELS_DIR"
SHIPPED = "shipped"
CURRENT_FILE = "current"
HISTORY_FILE = "history.jsonl"
VERSION_FILE = "version.json"
FAQ_FILE = "faq.yaml"
CANDIDATE, REFUSED = "candidate", "refused"
_NAME = re.compile(r"v(\d{1,9})")


def default_models_dir(explicit: str | Path | None = None, data_dir: str | Path | None = None) -> Path:
    """`explicit`, else $IVR_MODELS_DIR, else `models/intents` under the store's data directory
    (`data_dir`, else $IVR_DATA_DIR or calls/store): never inside the repository."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(MODELS_DIR_ENV):
        return Path(os.environ[MODELS_DIR_ENV]).expanduser()
    if data_dir is None:
        from ivr.store.config import StoreConfig

        data_dir = StoreConfig.from_env().data_dir
    return Path(data_dir) / "models" / "intents"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    path: Path | None
    """The model directory; None for `shipped` (the package's own model)."""
    info: dict[str, Any]
    """version.json: created_at, created_by, status (candidate or refused), reasons, figures, labels, parent."""

    @property
    def status(self) -> str:
        return str(self.info.get("status", CANDIDATE))

    @property
    def faq_path(self) -> Path | None:
        """The version's FAQ (the flow's with labelled paraphrases added), None: the flow's own."""
        if self.path is None or not (self.path / FAQ_FILE).is_file():
            return None
        return self.path / FAQ_FILE


class ModelVersions:
    """The versions in one models directory (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ---- reading

    def names(self) -> list[str]:
        """Version names, oldest first (`shipped` not included)."""
        if not self.root.is_dir():
            return []
        found = [(int(m.group(1)), p.name) for p in self.root.iterdir()
                 if (m := _NAME.fullmatch(p.name)) and (p / VERSION_FILE).is_file()]
        return [name for _, name in sorted(found)]

    def get(self, name: str) -> ModelVersion:
        if name == SHIPPED:
            return ModelVersion(SHIPPED, None, {"status": "shipped", "created_by": "the package"})
        path = self.root / name
        if not _NAME.fullmatch(name) or not (path / VERSION_FILE).is_file():
            raise IvrError(f"no model version {name!r} in {self.root}")
        try:
            info = json.loads((path / VERSION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IvrError(f"{path / VERSION_FILE}: unreadable ({exc})") from None
        return ModelVersion(name, path, info)

    def all(self) -> list[ModelVersion]:
        """Every version, newest first, then `shipped`."""
        return [self.get(n) for n in reversed(self.names())] + [self.get(SHIPPED)]

    def current_name(self) -> str:
        try:
            name = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            return SHIPPED
        return name or SHIPPED

    def current(self) -> ModelVersion:
        return self.get(self.current_name())

    def history(self) -> list[dict[str, Any]]:
        """Acceptances and rollbacks, oldest first."""
        try:
            lines = (self.root / HISTORY_FILE).read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def accepted_before(self) -> list[str]:
        """Versions that were in use, most recent first, without repeats (the current one first)."""
        seen: list[str] = []
        for entry in reversed([{"version": SHIPPED}] + self.history()):
            if entry["version"] not in seen:
                seen.append(entry["version"])
        current = self.current_name()
        return [current] + [n for n in seen if n != current]

    # ---- writing

    def publish(self, build: Path, info: dict[str, Any]) -> ModelVersion:
        """Move a model directory written elsewhere (`build`, on the same file system: see `workdir`) into place
        as the next version, with `info` as its version.json."""
        (build / VERSION_FILE).write_text(json.dumps(info, indent=1, default=str), encoding="utf-8")
        while True:
            numbers = [int(n[1:]) for n in self.names()]
            name = f"v{max(numbers, default=0) + 1}"
            try:
                os.rename(build, self.root / name)  # fails if another trainer took the name meanwhile
            except OSError:
                if not (self.root / name).exists():
                    raise
                continue
            return self.get(name)

    def workdir(self) -> Path:
        """A hidden empty folder in the models directory to write a version into before `publish`."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))

    def discard(self, build: Path) -> None:
        shutil.rmtree(build, ignore_errors=True)

    def accept(self, name: str, by: str, action: str = "accept", force: bool = False) -> ModelVersion:
        """Make `name` the version new calls use (`current`), and note who did it; a refused version only with
        `force`."""
        version = self.get(name)
        if version.status == REFUSED and not force:
            raise IvrError(f"{name} was refused when it was trained ({'; '.join(version.info.get('reasons', []))})")
        before = self.current_name()
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / CURRENT_FILE, (name + "\n").encode())
        entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "by": by, "action": action,
                 "version": name, "from": before}
        with (self.root / HISTORY_FILE).open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        return version

    def rollback(self, by: str, to: str | None = None) -> ModelVersion:
        """Back to `to` (any version that was in use before, or `shipped`), by default the one in use before
        the current one."""
        earlier = self.accepted_before()[1:]
        if to is None:
            if not earlier:
                raise IvrError("nothing to roll back to: no version was in use before this one")
            to = earlier[0]
        elif to != SHIPPED and to not in earlier:
            raise IvrError(f"{to} was never in use: accept it instead of rolling back to it")
        if to == self.current_name():
            raise IvrError(f"{to} is already in use")
        return self.accept(to, by, action="rollback", force=True)
