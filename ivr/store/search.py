"""Transcript search for the call list: words and "quoted phrases", over the full-text index.

A word matches the start of a word in some turn of the call (any turn: words may come from different turns);
a phrase in double quotes matches its words in that order, next to each other, in one turn. Without a
full-text index (a SQLite without FTS5) both fall back to LIKE: a word matches anywhere in a turn, a phrase
as that text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, literal_column, select
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy import text as sql_text
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from ivr.store import schema
from ivr.store.migrations import CALL_FTS_TABLE, FTS_TABLE, TS_CONFIG, TSV_COLUMN

MAX_SEARCH_WORDS = 8
"""At most this many words and phrases count in one search (and this many words in a phrase)."""
SPEAKER_COLUMNS = {"caller": "caller", "agent": "agent"}
"""A speaker's column in the per-call documents (any other speaker's words are in 'other')."""
_CALL_FTS = sql_table(CALL_FTS_TABLE, sql_column("rowid"))
_TERM = re.compile(r'"([^"]*)"?|([^\s"]+)')  # a quoted phrase (to the end when unclosed), or a bare word


@dataclass(frozen=True)
class Query:
    words: list[str]  # as typed (LIKE matches them as they are)
    phrases: list[list[str]]  # each the phrase's words (\w+), in order


def parse(text: str) -> Query:
    """'"lost my card" angry' -> phrase [lost, my, card] and word 'angry'."""
    words: list[str] = []
    phrases: list[list[str]] = []
    for match in _TERM.finditer(text):
        if match.group(2) is not None:
            words.append(match.group(2))
        else:
            tokens = re.findall(r"\w+", match.group(1))[:MAX_SEARCH_WORDS]
            if tokens:
                phrases.append(tokens)
    return Query(words[:MAX_SEARCH_WORDS], phrases[:MAX_SEARCH_WORDS])


def text_conditions(fulltext: str, text: str, speaker: str | None = None,
                    call_documents: bool = False) -> list[ColumnElement[bool]]:
    """One condition per word and per phrase, all of which a call must meet; `speaker`: only that speaker's
    turns count. `fulltext` is the store's index kind: 'fts5', 'tsvector' or 'like'; `call_documents`: SQLite
    keeps one search document per call (store step 5), where all the words are found in one match."""
    query = parse(text)
    tokens = [t for word in query.words for t in re.findall(r"\w+", word)][:MAX_SEARCH_WORDS]
    if fulltext in ("fts5", "tsvector") and (tokens or query.phrases):
        if call_documents and tokens and (speaker is None or speaker in SPEAKER_COLUMNS):
            words = [_in_call_documents(tokens, speaker)]
        else:
            words = [_indexed(fulltext, f'"{token}"*', token + ":*", speaker, phrase=False) for token in tokens]
        return words + [_indexed(fulltext, '"' + " ".join(p) + '"', " ".join(p), speaker, phrase=True)
                        for p in query.phrases]
    return [_like(word, speaker) for word in query.words] + [_like(" ".join(p), speaker) for p in query.phrases]


def _in_call_documents(tokens: list[str], speaker: str | None) -> ColumnElement[bool]:
    """Calls whose document has every word's start (in `speaker`'s column, when given): one FTS5 match, the
    calls from their (doc_id, started_at, id) index."""
    column = SPEAKER_COLUMNS[speaker] + " : " if speaker else ""
    match = " AND ".join(f'{column}"{token}"*' for token in tokens)
    return schema.calls.c.doc_id.in_(select(_CALL_FTS.c.rowid).where(literal_column(CALL_FTS_TABLE).match(match)))


def _indexed(fulltext: str, fts5_query: str, ts_query: str, speaker: str | None,
             phrase: bool) -> ColumnElement[bool]:
    c, t = schema.calls.c, schema.turns.c
    if fulltext == "fts5":  # the turns' call and speaker from an index, not from their (long) rows
        sql = (f"SELECT call_id FROM turns INDEXED BY {schema.TURN_SEARCH_INDEX.name} WHERE id IN "
               f"(SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :match)")
        params: list[BindParameter[str]] = [bindparam("match", fts5_query, unique=True)]
        if speaker:
            sql += " AND speaker = :speaker"
            params.append(bindparam("speaker", speaker, unique=True))
        return c.id.in_(sql_text(sql).bindparams(*params).columns(sql_column("call_id")))
    config: ColumnElement[Any] = literal_column(f"'{TS_CONFIG}'::regconfig")
    tsquery = func.phraseto_tsquery(config, ts_query) if phrase else func.to_tsquery(config, ts_query)
    whose: list[ColumnElement[bool]] = [t.speaker == speaker] if speaker else []
    return c.id.in_(select(t.call_id).where(literal_column(f"turns.{TSV_COLUMN}").op("@@")(tsquery), *whose))


def _like(text: str, speaker: str | None) -> ColumnElement[bool]:
    c, t = schema.calls.c, schema.turns.c
    whose: list[ColumnElement[bool]] = [t.speaker == speaker] if speaker else []
    return exists(select(t.id).where(and_(t.call_id == c.id, t.text.ilike(
        "%" + like_escape(text) + "%", escape="\\"), *whose)))


def like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
