"""`ivr labels demo`: the learning loop end to end, with figures.

Callers who ask whether they can afford something ("will I make it to payday", "can I cover a two hundred
dollar repair") want their balance, but the shipped model knows balance requests only as questions about
the balance: it misses this family of phrasings (0 of the 40 below go to the balance). The demo
1. stores 20 calls, one for each phrasing of `HEARD`, through the store's writer, with what the shipped
   model and the bank flow really did with them;
2. labels each of those caller turns `balance`, as a supervisor does on the call page;
3. retrains with `ivr.learn.retrain` (the shipped recipe plus the labels), which compares the candidate with
   the shipped model on the shipped benchmarks and the held-back labels, and publishes a version;
4. accepts it (as an admin does) and loads the version in use the way `ivr serve` does;
5. prints what the flow does with the 20 phrasings of `UNSEEN`, never stored nor labelled, and with the
   benchmarks, before and after.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dialog.actions import Say
from dialog.flow import load_default_flow
from dialog.machine import Machine
from dialog.nlu.faq import default_faq_path
from dialog.nlu.understand import Nlu
from ivr.errors import IvrError
from ivr.learn.benchmarks import DEFAULT_BENCHMARKS
from ivr.learn.retrain import RetrainInput, RetrainSettings, compare, figures_table, load_nlu, retrain
from ivr.learn.versions import ModelVersions
from ivr.store import Store, StoreConfig, StoreWriter
from ivr.store.labels import add_label, training_rows
from ivr.train.nlu.data import Example, faq_examples, read_examples, relabel
from ivr.train.nlu.train import TrainConfig

INTENT = "balance"
HEARD = (
    "can I afford a hundred dollars today", "will I make it to payday", "do I have enough to cover my rent",
    "is there enough in there for the car payment", "will my card go through if I spend fifty dollars",
    "can I afford to buy groceries this week", "have I got enough for the electric bill",
    "is there enough money to pay the mortgage on friday", "will the gym membership bounce",
    "can I cover a two hundred dollar repair", "am I good for a night out tonight",
    "would a three hundred dollar purchase go through", "is there room for one more payment",
    "can I pay my phone bill without going under", "will I have enough to pay the babysitter",
    "could I manage a forty dollar takeaway", "is there enough for my kid's school trip",
    "can I stretch to a new pair of shoes", "will my rent payment clear tomorrow",
    "can I afford the concert tickets",
)
"""Phrasings stored as calls and labelled."""
UNSEEN = (
    "can I afford a new laptop", "will I get through to the end of the month",
    "do I have enough for the water bill", "is there enough to cover the insurance",
    "will a sixty dollar payment go through", "can I afford dinner out tonight",
    "have I got enough to pay the plumber", "would the car repair bounce",
    "can I cover my daughter's dance lessons", "will my direct debit clear on monday",
    "is there enough in my account for the flights", "can I manage a two hundred dollar bill",
    "will I be short for the rent", "could I afford a weekend away",
    "can I pay the vet today", "am I able to buy a new phone this month",
    "have I got enough left for the bus pass", "will the cable bill go through",
    "is there enough for the school fees", "can I stretch to a birthday present",
)
"""Phrasings of the same family never stored nor labelled: the held-out figures."""
GREETING = "Welcome to Example Bank. How can I help you?"
BANKING77 = "data/text/banking77/train.csv"
MAP_FILE = Path(__file__).resolve().parents[2] / "models" / "intents" / "banking77_map.json"
BANK_ROWS = MAP_FILE.with_name("bank_intents.csv")


def store_call(store: Store, nlu: Nlu, machine: Machine, call_id: str, text: str) -> int:
    """One call through the store's writer: the greeting, the caller's turn, what the NLU and the flow made
    of it (the agent's reply), then the caller hangs up. Returns the caller turn's seq."""
    from ivr.train.nlu.turns_eval import utterance_for

    state, _ = machine.start()
    found = nlu.understand(text)
    _, actions = machine.step(state, utterance_for(nlu, text))
    events: list[dict[str, Any]] = [
        {"t_ms": 0.0, "type": "call_started", "call_id": call_id, "sample_rate_hz": 8000},
        {"t_ms": 10.0, "type": "say", "text": GREETING, "barge_in": True},
        {"t_ms": 2500.0, "type": "prompt_finished"},
        {"t_ms": 3000.0, "type": "speech_started", "onset_ms": 3000.0},
        {"t_ms": 4800.0, "type": "speech_stopped", "onset_ms": 3000.0, "end_ms": 4600.0},
        {"t_ms": 5100.0, "type": "transcript", "text": text, "confidence": 0.9},
        {"t_ms": 5110.0, "type": "nlu", "intent": found.intent, "confidence": round(found.intent_confidence, 3),
         "faq": found.faq_id, "faq_score": round(found.faq_score, 3), "latency_ms": round(found.latency_ms, 2)},
    ]
    events += [{"t_ms": 5200.0 + i, "type": "say", "text": a.text, "barge_in": True}
               for i, a in enumerate(x for x in actions if isinstance(x, Say))]
    events.append({"t_ms": 9000.0, "type": "call_ended", "outcome": "caller-hangup", "reason": "hangup",
                   "target": "", "node": "main_menu"})
    writer = StoreWriter(store, source="sim", background=False)
    now = datetime.now(UTC)
    writer.apply([(now + timedelta(milliseconds=e["t_ms"]), e) for e in events])  # records, as events.jsonl has
    writer.finish([], None)
    stored = store.get_call(call_id)
    if stored is None or writer.failed:
        raise IvrError(f"the store did not take call {call_id}")
    return int(next(t["seq"] for t in stored["turns"] if t["speaker"] == "caller"))


def base_recipe(backend: str, shared: Path) -> tuple[list[Example], TrainConfig]:
    """The shipped model's training rows and settings (models/intents/README.md); tfidf: the bank's own rows
    and FAQ only, in seconds."""
    rows = read_examples(BANK_ROWS) + faq_examples(default_faq_path())
    if backend == "tfidf":
        return rows, TrainConfig(augment=2, backend="tfidf")
    if (shared / BANKING77).is_file():
        rows += relabel(read_examples(shared / BANKING77), json.loads(MAP_FILE.read_text(encoding="utf-8")),
                        oos_per_label=12, max_per_intent=200)
    return rows, TrainConfig(augment=2, backend="ensemble")


def run_demo(work: Path, backend: str, json_out: str | None = None, shared: Path | None = None,
             label_copies: int = RetrainSettings.label_copies) -> dict[str, Any]:
    import os

    shared = shared or Path(os.environ.get("IVR_SHARED_DIR", "../shared"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    machine = Machine(load_default_flow())
    versions = ModelVersions(work / "models")
    shipped = load_nlu(versions.current())
    config = StoreConfig(db_url=f"sqlite:///{work / 'ivr.db'}", data_dir=work / "data", recording_key=bytes(32),
                         key_file=work / "unused.key")
    started = time.perf_counter()
    with Store(config) as store:
        for i, text in enumerate(HEARD):
            seq = store_call(store, shipped, machine, f"demo-{i:02d}", text)
            add_label(store, f"demo-{i:02d}", seq, "intent", INTENT, "demo-supervisor")
        labelled = training_rows(store)
    print(f"stored {len(HEARD)} calls and labelled their caller turns {INTENT!r}", flush=True)
    base, train_config = base_recipe(backend, shared)
    benchmarks = {p.name: read_examples(p) for p in DEFAULT_BENCHMARKS}
    version = retrain(RetrainInput(base, labelled, benchmarks, machine), versions,
                      RetrainSettings(label_copies=label_copies, train=train_config), by="demo")
    print("\n".join(figures_table(version)), flush=True)
    if version.status == "candidate":
        versions.accept(version.name, "demo-admin")
    in_use = load_nlu(versions.current())
    family: dict[str, Sequence[Example]] = {"family, labelled (stored calls)": [Example(t, INTENT) for t in HEARD],
              "family, never labelled": [Example(t, INTENT) for t in UNSEEN], **benchmarks}
    figures = compare(shipped, in_use, machine, family)
    report = {"backend": backend, "version": version.name, "status": version.status, "in_use": versions.current_name(),
              "figures": figures, "training": version.info, "seconds": round(time.perf_counter() - started, 1),
              "load_avg_1min": round(os.getloadavg()[0], 2)}
    _print_figures(report)
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return report


def _print_figures(report: dict[str, Any]) -> None:
    print(f"\nwhat the bank flow does with each turn: shipped model -> {report['in_use']} (in use after the demo)")
    print(f"{'':34}{'n':>4}  {'right before':>13}{'right after':>12}  {'miss before':>12}{'miss after':>11}"
          f"  {'wrong before':>13}{'wrong after':>12}")
    for name, pair in report["figures"].items():
        a, b = pair["current"], pair["candidate"]
        print(f"{name:34}{a['n']:>4}  {a['right']:>13.3f}{b['right']:>12.3f}  {a['miss']:>12.3f}{b['miss']:>11.3f}"
              f"  {a['wrong']:>13.3f}{b['wrong']:>12.3f}")
    print(f"({report['seconds']} s, training included; 1-minute load average {report['load_avg_1min']})")
