"""Reading a user's YAML file (config, caller script, FAQ) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from telephony.errors import TelephonyError


def read_yaml(path: Path, what: str) -> Any:
    """The parsed document (None for an empty file); TelephonyError naming the file and `what` it is when it
    cannot be read or is not YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TelephonyError(f"{path}: cannot read {what} ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise TelephonyError(f"{path}: invalid YAML ({exc})".replace("\n", " ")) from None
