"""Reading flow YAML with line numbers, so that every flow error can point at its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dialog.errors import DialogError, FlowError


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers the line (1-based) where it starts."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings are `LineDict`s and that rejects duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise FlowError(f"line {key_node.start_mark.line + 1}: key {key!r} must be text "
                            "(quote yes/no/on/off and numbers used as keys)")
        if key in mapping:
            raise FlowError(f"line {key_node.start_mark.line + 1}: duplicate key '{key}'")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, source: str) -> Any:
    """The YAML document in `text`; a FlowError naming `source` and the line when it is not valid YAML."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except FlowError as error:
        raise FlowError(f"{source}, {error}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown line"
        problem = error.problem or error.context or "syntax error"
        if error.context and error.problem and error.context_mark is not None:
            problem += f" ({error.context} at line {error.context_mark.line + 1})"
        raise FlowError(f"{source}, {where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise FlowError(f"{source}: invalid YAML: {error}") from None


def line_of(value: object, key: str | None = None) -> int:
    """The line of `key` in a mapping, or where the mapping starts; 0 when unknown."""
    if not isinstance(value, LineDict):
        return 0
    return value.key_lines.get(key, value.line) if key is not None else value.line


def read_yaml(path: Path, what: str) -> Any:
    """The parsed document of a user's file (None when empty); DialogError naming the file when it cannot
    be read, FlowError (a DialogError) with the line when it is not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DialogError(f"{path}: cannot read {what} ({exc.strerror})") from None
    return parse_yaml(text, str(path))
