"""What a caller's turn means in a listening node: one of its choices, a FAQ answer, or nothing.

Three kinds of evidence, combined per node (the same turn can mean different things in different nodes):
- the NLU's probabilities (`Utterance.ranking`): every intent the model knows, "oos" included;
- the FAQ candidates (`Utterance.faqs`): entries with a 0..1 score (the intent model's `faq:<id>` label
  and retrieval, fused in `dialog.nlu.understand`);
- the node's keywords, regexes and spoken keys (`dialog.matching.keyword_evidence`).

Keywords are evidence, not a verdict. A choice's weight is the model's probability of its intent, times
`keyword_weight` when one of its keywords (or its regex) is in the turn: a keyword tips an undecided model
("I lost my Visa": lost_card 0.46 against out of scope 0.51), but cannot outvote a confident one ("my
replacement card hasn't arrived yet" names a card, and the model and the FAQ know it asks when a new card
comes). The factor is the same for a long keyword as for a short one: the model has read the words too,
and a longer phrase counted more often made answers worse on the development turns. A choice whose intent
the model does not know (or has no intent) weighs `keyword_prior` times the factor when its keywords
match, and nothing otherwise. A turn that is only a key ("two", "press one") selects that key's choice
outright.

The weights of choices that lead to the same node are added up ("no" and "that's all" both end the call),
the FAQ candidates keep their scores, and everything the model gives to labels that are not choices here
(out of scope, a "yes" at the menu) stays as the weight of "none of these". Each option's share of the
total is its confidence. The best option is then:
- a choice: taken at `intent_threshold` or more, asked about ("Did you mean ...?") from
  `intent_confirm_threshold`;
- a FAQ entry: answered at `faq_threshold` or more (the answer is followed by "Did that answer your
  question?", which is its confirmation);
- else nothing: a no-match, and the dialog repairs.

Without an NLU (an empty ranking) the keywords decide alone as they always did: the longest match wins.
A turn in which the caller corrected themselves ("opening hours, no wait, I meant my balance") is judged by
what follows the correction (`dialog.nlu.text.meaning_part`), by the keywords here as by the NLU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dialog.events import FaqCandidate, Utterance
from dialog.flow import Choice, Settings
from dialog.matching import is_spoken_key, keyword_evidence
from dialog.nlu.text import meaning_part, normalize_text

OOS = "oos"
ANSWER_WORDS = {"no": "no", "nope": "no", "nah": "no", "yes": "yes", "yeah": "yes", "yep": "yes", "yup": "yes"}
"""A first word that answers a yes/no question (see _lead_with_the_answer)."""


@dataclass(frozen=True)
class Decision:
    kind: Literal["choice", "confirm", "faq", "none"]
    choice: Choice | None = None
    """The choice taken or asked about."""
    faq: FaqCandidate | None = None
    confidence: float = 0.0
    """The option's share of all the weight (1.0 for a spoken key or a keyword without an NLU)."""


def decide(event: Utterance, choices: Sequence[Choice], settings: Settings) -> Decision:
    """What `event` means among `choices` (see the module docstring)."""
    evidence = keyword_evidence(meaning_part(event.text), choices)
    for choice, score in zip(choices, evidence, strict=True):
        if is_spoken_key(score):
            return Decision("choice", choice, confidence=1.0)
    ranking = event.ranking or _legacy_ranking(event)
    if not ranking:
        best = max(range(len(choices)), key=lambda i: (evidence[i], -i), default=None)
        if best is not None and evidence[best] > 0:
            return Decision("choice", choices[best], confidence=1.0)
        faq = _faqs(event)
        return Decision("faq", faq=faq[0], confidence=faq[0].score) if faq else Decision("none")
    probability = dict(ranking)
    weights = [_weight(choice, score, probability, settings) for choice, score in zip(choices, evidence, strict=True)]
    _lead_with_the_answer(event.text, choices, weights)
    by_target: dict[str, float] = {}
    leader: dict[str, int] = {}
    for i, (choice, weight) in enumerate(zip(choices, weights, strict=True)):
        if weight <= 0:
            continue
        by_target[choice.goto] = by_target.get(choice.goto, 0.0) + weight
        if choice.goto not in leader or weight > weights[leader[choice.goto]]:
            leader[choice.goto] = i
    chosen_intents = {c.intent for c in choices if c.intent}
    none_weight = sum(p for label, p in ranking if label not in chosen_intents)
    faqs = _faqs(event)
    # At least 1: the model's probabilities add up to 1, and what is missing went to FAQ entries that are not
    # candidates, which are "none of these" here. So a share is never above the option's own score.
    total = max(sum(by_target.values()) + sum(f.score for f in faqs) + none_weight, 1.0)
    best_target = max(by_target, key=by_target.__getitem__, default=None)
    choice_share = by_target[best_target] / total if best_target is not None else 0.0
    faq_share = faqs[0].score / total if faqs else 0.0
    if faqs and faq_share > choice_share:
        if faq_share >= settings.faq_threshold:
            return Decision("faq", faq=faqs[0], confidence=faq_share)
        return Decision("none", confidence=faq_share)
    if best_target is None:
        return Decision("none")
    choice = choices[leader[best_target]]
    if choice_share >= settings.intent_threshold:
        return Decision("choice", choice, confidence=choice_share)
    if choice_share >= settings.intent_confirm_threshold:
        return Decision("confirm", choice, confidence=choice_share)
    return Decision("none", confidence=choice_share)


def _lead_with_the_answer(text: str, choices: Sequence[Choice], weights: list[float]) -> None:
    """A node that asked a yes/no question ("Anything else?"), answered with a turn that starts with "no"
    (or "yes"): the model's weight for the other answer goes to the one said first. "No, absolutely fine"
    is a no, whatever "absolutely" made the model think; a request in the rest ("no, my balance") still
    competes with its own weight."""
    words = normalize_text(text).split()
    said = ANSWER_WORDS.get(words[0]) if words else None
    index = {choice.intent: i for i, choice in enumerate(choices) if choice.intent in ("yes", "no")}
    if said is None or len(index) < 2:
        return
    other = "no" if said == "yes" else "yes"
    weights[index[said]] += weights[index[other]]
    weights[index[other]] = 0.0


def _weight(choice: Choice, keyword_score: int, probability: dict[str, float], settings: Settings) -> float:
    boost = settings.keyword_weight if keyword_score > 0 else 1.0
    if choice.intent and choice.intent in probability:
        return probability[choice.intent] * boost
    return settings.keyword_prior * boost if keyword_score > 0 else 0.0


def _legacy_ranking(event: Utterance) -> tuple[tuple[str, float], ...]:
    """An Utterance built with only `intent` and `intent_confidence` (no ranking): that intent and the
    rest out of scope."""
    if not event.intent:
        return ()
    confidence = min(max(event.intent_confidence, 0.0), 1.0)
    return ((event.intent, confidence), (OOS, 1.0 - confidence))


def _faqs(event: Utterance) -> tuple[FaqCandidate, ...]:
    if event.faqs:
        return event.faqs
    return (FaqCandidate("", 1.0, event.faq_answer),) if event.faq_answer else ()
