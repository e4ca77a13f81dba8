"""What the dialog does with single caller turns: `ivr eval-nlu FILE.csv` (text,label rows).

Each turn is understood (`dialog.nlu.understand.Nlu`) and stepped through the flow's machine from the place
where a caller would say it: flow intents, FAQ questions and out-of-scope turns at the start node's menu;
yes, no and goodbye where the agent has asked "anything else?" (`ANSWER_NODE`). A label is a flow intent,
`faq:<id>` or `oos`. What the caller gets is one of:

- `right`: the flow went where the label says (the intent's choice, the FAQ answer, or for `oos` nothing:
  a no-match);
- `confirmed`: the agent asked "Did you mean <the right thing>?" (a yes gets there, one turn later);
- `miss`: a no-match for an in-scope turn (the caller hears a re-prompt);
- `wrong`: another choice or answer, or a question about the wrong thing.

`text` as written, or `--asr-noise N` copies with simulated recognition errors (`ivr.train.nlu.train.asr_noise`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from dialog.actions import Listen, Say
from dialog.events import Utterance
from dialog.machine import DialogState, Machine
from dialog.nlu.understand import Nlu
from ivr.train.nlu.data import Example

ANSWER_NODE = "balance"
"""A node that has just asked "Is there anything else I can help you with?" in the bank flow."""
ANSWER_LABELS = frozenset({"yes", "no", "goodbye"})
OUTCOMES = ("right", "confirmed", "miss", "wrong")


@dataclass(frozen=True)
class TurnResult:
    text: str
    label: str
    got: str
    """What the flow did: an intent/choice label, `faq:<id>`, `ask:<label>`, `no-match`."""
    outcome: str


def utterance_for(nlu: Nlu, text: str, confidence: float = 1.0) -> Utterance:
    """The Utterance a call session builds for `text` (the NLU's findings on it)."""
    found = nlu.understand(text)
    build = getattr(found, "utterance", None)
    if build is not None:
        utterance: Utterance = build(text, confidence)
        return utterance
    return Utterance(text, confidence, found.intent, found.intent_confidence, found.faq_answer)


def context_state(machine: Machine, label: str) -> DialogState:
    """Where a turn with this label is said: the menu, or a node that asked "anything else?"."""
    state, _ = machine.start()
    if label in ANSWER_LABELS and ANSWER_NODE in machine.flow.nodes:
        actions: list[Any] = []
        state = machine._enter(state, ANSWER_NODE, actions)  # noqa: SLF001 (evaluation only)
        state = replace(state, last_choice=ANSWER_NODE)  # as in a call: the caller asked for it
    return state


def what_happened(machine: Machine, nlu: Nlu, before: DialogState, after: DialogState,
                  actions: Sequence[Any]) -> str:
    """The label of what the step did (see the module docstring)."""
    listen = next((a for a in reversed(actions) if isinstance(a, Listen)), None)
    if listen is not None and listen.kind == "confirm":
        return f"ask:{listen.about}"
    if listen is not None and listen.kind == "faq":
        return f"faq:{after.last_faq or _answered(nlu, actions)}"
    if after.no_match_count > before.no_match_count or (after.node == before.node and not after.ended
                                                        and after.turn > before.turn and not after.pending):
        return "no-match"
    if after.node == "goodbye" or after.end_reason == "completed":
        return "goodbye"
    if after.node == machine.flow.start or after.node == _menu(machine):
        return "menu"
    return after.last_intent or after.last_choice or after.node


def _answered(nlu: Nlu, actions: Sequence[Any]) -> str:
    said = {a.text for a in actions if isinstance(a, Say)}
    return next((e.id for e in getattr(nlu.faq, "entries", []) if e.answer in said), "?")


def _menu(machine: Machine) -> str:
    start = machine.flow.node(machine.flow.start)
    return start.next or machine.flow.start


def judge(label: str, got: str) -> str:
    """right / confirmed / miss / wrong for a turn labelled `label` that got `got`."""
    if label == "oos":
        return "right" if got == "no-match" else "confirmed" if got.startswith("ask:") else "wrong"
    expected = {"no": {"goodbye", "no"}, "goodbye": {"goodbye"}, "yes": {"menu", "yes"}}.get(label, {label})
    if got in expected:
        return "right"
    if got.startswith("ask:") and got[4:] in expected:
        return "confirmed"
    return "miss" if got == "no-match" else "wrong"


def understand_rows(nlu: Nlu, rows: Sequence[Example], asr_noise: int = 0,
                    seed: int = 0) -> list[tuple[Example, Utterance]]:
    """Each row (or `asr_noise` noisy copies of it) with the Utterance the NLU makes of it."""
    from ivr.train.nlu.train import asr_noise as noisy

    rng = random.Random(seed)
    out = []
    for row in rows:
        texts = [row.text] if not asr_noise else [noisy(row.text, rng) for _ in range(asr_noise)]
        out += [(row, utterance_for(nlu, text)) for text in texts]
    return out


def judge_rows(nlu: Nlu, machine: Machine, understood: Sequence[tuple[Example, Utterance]]) -> list[TurnResult]:
    """One dialog step for each understood turn, from where it is said."""
    results = []
    for row, utterance in understood:
        before = context_state(machine, row.intent)
        after, actions = machine.step(before, utterance)
        got = what_happened(machine, nlu, before, after, actions)
        results.append(TurnResult(utterance.text, row.intent, got, judge(row.intent, got)))
    return results


def evaluate_turns(nlu: Nlu, machine: Machine, rows: Sequence[Example], asr_noise: int = 0,
                   seed: int = 0) -> list[TurnResult]:
    """Each row (and `asr_noise` noisy copies of it) through the NLU and one dialog step."""
    return judge_rows(nlu, machine, understand_rows(nlu, rows, asr_noise, seed))


COSTS = {"right": 0.0, "confirmed": 0.3, "miss": 1.0, "wrong": 3.0}
"""What an outcome costs a caller, for tuning: a question is cheap, a re-prompt costs a turn, a wrong
answer or transfer costs the call."""
GRID: dict[str, tuple[float, ...]] = {
    "keyword_weight": (1.0, 2.0, 3.0, 4.0, 6.0),
    "intent_threshold": (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7),
    "intent_confirm_threshold": (0.15, 0.2, 0.25, 0.3, 0.35, 0.4),
    "faq_threshold": (0.3, 0.35, 0.4, 0.45, 0.5),
}


def tune(nlu: Nlu, machine: Machine, understood: Sequence[tuple[Example, Utterance]],
         grid: dict[str, tuple[float, ...]] | None = None) -> list[tuple[float, dict[str, float]]]:
    """Mean cost (COSTS) of every combination of the grid's settings, cheapest first."""
    import itertools
    from dataclasses import replace

    grid = grid or GRID
    keys = list(grid)
    scored = []
    for values in itertools.product(*(grid[k] for k in keys)):
        settings = dict(zip(keys, values, strict=True))
        if settings.get("intent_confirm_threshold", 0) >= settings.get("intent_threshold", 1):
            continue
        changed: dict[str, Any] = dict(settings)
        flow = replace(machine.flow, settings=replace(machine.flow.settings, **changed))
        results = judge_rows(nlu, Machine(flow), understood)
        cost = sum(COSTS[r.outcome] for r in results) / max(len(results), 1)
        scored.append((round(cost, 4), settings))
    return sorted(scored, key=lambda item: item[0])


def summarize(results: Sequence[TurnResult]) -> dict[str, Any]:
    """Shares of each outcome overall and by group (flow intents, FAQ, answers, out of scope)."""
    def group(label: str) -> str:
        if label == "oos":
            return "out of scope"
        if label.startswith("faq:"):
            return "faq"
        return "answers" if label in ANSWER_LABELS else "flow intents"

    def shares(items: Sequence[TurnResult]) -> dict[str, float]:
        counts = Counter(r.outcome for r in items)
        return {o: round(counts[o] / max(len(items), 1), 4) for o in OUTCOMES} | {"n": len(items)}

    groups: dict[str, list[TurnResult]] = {}
    for r in results:
        groups.setdefault(group(r.label), []).append(r)
    return {"all": shares(results), **{name: shares(items) for name, items in sorted(groups.items())}}
