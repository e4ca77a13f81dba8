"""The call list's query parameters, checked and bounded: a value out of range or of the wrong kind is
a 422 with a message saying what is allowed, never an error deeper down (a 500)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from fastapi import HTTPException

from ivr.store import CallFilter

MAX_OFFSET = 1_000_000
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_TEXT_CHARS = 500
MIN_DATE, MAX_DATE = date(1900, 1, 1), date(9998, 12, 31)
TEXT_PARAMS = ("q", "who", "caller", "outcome", "intent", "emotion", "escalated", "date_from", "date_to", "offset",
               "limit", "source", "reviewed", "score_min", "score_max", "sort", "order")
SOURCES = {"sip": "phone (SIP)", "chat": "chat", "sim": "simulated", "import": "imported"}
"""The call list's channel filter (`source`): the store's sources and how the list names them."""
SPEAKERS = {"caller": "caller", "agent": "agent", "anyone": None}
"""Whose words the search looks in (`who`): the caller's by default, so the agent's prompts match nothing."""
SORTS = {"started": ("started_at", True), "channel": ("source", False), "duration": ("duration_ms", True),
         "caller": ("caller_tail", False), "outcome": ("outcome", False), "intent": ("intent", False),
         "emotion": ("emotion", False), "score": ("score", True), "reviewed": ("reviewed_at", True)}
"""The call list's `sort` values: the store's column, and whether a first click sorts it descending."""
ORDERS = {"asc": False, "desc": True}
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,20}")


def int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = (params.get(name) or "").strip()
    if not raw:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise HTTPException(422, f"{name} is a whole number from {low} to {high}")
    value = int(raw)
    if not low <= value <= high:
        raise HTTPException(422, f"{name} is a whole number from {low} to {high}")
    return value


def date_param(params: Mapping[str, str], name: str) -> date | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise HTTPException(422, "dates are YYYY-MM-DD") from None
    if not MIN_DATE <= value <= MAX_DATE:
        raise HTTPException(422, f"dates are YYYY-MM-DD from {MIN_DATE} to {MAX_DATE}")
    return value


def sort_from(params: Mapping[str, str]) -> tuple[str, bool]:
    """The list's sort (`sort`, `order`): the URL's name of the column and whether it is descending."""
    name = params.get("sort") or "started"
    if name not in SORTS:
        raise HTTPException(422, f"sort is one of {', '.join(SORTS)}")
    order = params.get("order") or ""
    if order and order not in ORDERS:
        raise HTTPException(422, "order is asc or desc")
    return name, ORDERS[order] if order else SORTS[name][1]


def score_param(params: Mapping[str, str], name: str) -> float | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 100.0:
        raise HTTPException(422, f"{name} is a score from 0 to 100")
    return value


def filter_from(params: Mapping[str, str]) -> CallFilter:
    """The call list filter from a request's query parameters (HTTPException 422 when one is bad)."""
    for name in TEXT_PARAMS:
        if len(params.get(name) or "") > MAX_TEXT_CHARS:
            raise HTTPException(422, f"{name} is at most {MAX_TEXT_CHARS} characters")
    escalated = {"yes": True, "no": False}.get(params.get("escalated") or "")
    source = params.get("source") or None
    if source is not None and source not in SOURCES:
        raise HTTPException(422, f"source is one of {', '.join(SOURCES)}")
    reviewed = params.get("reviewed") or ""
    if reviewed not in ("", "yes", "no"):
        raise HTTPException(422, "reviewed is yes or no")
    sort, descending = sort_from(params)
    who = params.get("who") or "caller"
    if who not in SPEAKERS:
        raise HTTPException(422, "who is caller, agent or anyone")
    return CallFilter(date_from=date_param(params, "date_from"), date_to=date_param(params, "date_to"),
                      outcome=params.get("outcome") or None, intent=params.get("intent") or None,
                      emotion=params.get("emotion") or None, escalated=escalated,
                      caller=params.get("caller") or None, text=params.get("q") or None,
                      speaker=SPEAKERS[who], source=source, reviewed={"yes": True, "no": False}.get(reviewed),
                      score_min=score_param(params, "score_min"), score_max=score_param(params, "score_max"),
                      sort=SORTS[sort][0], descending=descending,
                      limit=int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
                      offset=int_param(params, "offset", 0, 0, MAX_OFFSET))
