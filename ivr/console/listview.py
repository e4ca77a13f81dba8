"""The call list's table head and links: sortable column headers (a first click sorts by the column, a second
reverses it), and the query string that a saved search or the CSV export takes from the page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ivr.console.params import SORTS, TEXT_PARAMS, sort_from

COLUMNS = (("Started (UTC)", "started"), ("Channel", "channel"), ("Duration", "duration"), ("Caller", "caller"),
           ("Outcome", "outcome"), ("Reason", None), ("Intent", "intent"), ("Emotion", "emotion"),
           ("Score", "score"), ("Reviewed", "reviewed"), ("Last words", None))
"""The list's columns: the header's text and its `sort` value (None: not sortable)."""


def list_query(params: Mapping[str, str], drop: tuple[str, ...] = ("offset",)) -> str:
    """The list's own query parameters (no empty ones, none of `drop`, nothing unknown) as a query string."""
    return urlencode([(k, v) for k, v in params.items() if k in TEXT_PARAMS and k not in drop and v])


def clean_query(query: str) -> str:
    """A posted query string reduced to the list's parameters (no paging offset)."""
    return list_query(dict(parse_qsl(query.lstrip("?"), keep_blank_values=False)))


def headers(params: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each column's text, its sort link (None when not sortable) and its aria-sort value (None when the list is
    not sorted by it). Sorting starts again at the first page and keeps the filters."""
    current, descending = sort_from(params)
    kept = [(k, v) for k, v in params.items() if k in TEXT_PARAMS and k not in ("offset", "sort", "order") and v]
    out = []
    for title, name in COLUMNS:
        if name is None:
            out.append({"title": title, "href": None, "aria_sort": None})
            continue
        sorted_here = name == current
        next_descending = not descending if sorted_here else SORTS[name][1]
        href = "?" + urlencode([*kept, ("sort", name), ("order", "desc" if next_descending else "asc")])
        out.append({"title": title, "href": href, "name": name,
                    "aria_sort": ("descending" if descending else "ascending") if sorted_here else None})
    return out
