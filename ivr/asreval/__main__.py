"""python -m ivr.asreval [--split tune|check] [--setting NAME ...] [--json FILE]: recognition on the dev set."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    from dialog.flow import load_default_flow
    from ivr.asreval.devset import build, split_parser
    from ivr.asreval.run import Judge, evaluate
    from ivr.asreval.settings import make

    p = split_parser("python -m ivr.asreval", __doc__)
    p.add_argument("--setting", action="append", help="levers joined by '+' (see ivr.asreval.settings); repeat "
                   "to compare")
    p.add_argument("--nlu", action="store_true", help="judge non-keyword turns with the NLU too")
    p.add_argument("--node", action="append", help="only these node kinds (menu, anything_else, confirm, digits)")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--show", action="store_true", help="print every turn whose text differs from what was said")
    args = p.parse_args(argv)

    turns = build(args.cache, (args.split,))
    if args.node:
        turns = [t for t in turns if t.node in args.node]
    if args.limit:
        turns = turns[:args.limit]
    nlu = None
    if args.nlu:
        from dialog.nlu.understand import Nlu
        nlu = Nlu.load()
    judge = Judge(load_default_flow(), nlu)
    results = []
    for name in args.setting or ["baseline"]:
        setting = make(name)
        report = evaluate(setting.recognizer, turns, judge, setting.options_for, name, setting.pick)
        row = report.rows()
        results.append({**row, "turns_detail": [
            {"voice": s.turn.voice.name, "node": s.turn.node, "ref": s.turn.text, "hyp": s.text,
             "ok": s.understood, "ok_ref": s.understood_ref, "noisy": s.turn.noisy, "alts": list(s.alternatives)}
            for s in report.scored]})
        print(json.dumps(row))
        if args.show:
            for s in report.scored:
                if s.edits or s.understood != s.understood_ref:
                    mark = "LOST" if s.understood_ref and not s.understood else "    "
                    print(f"  {mark} [{s.turn.voice.name:22s}] {s.turn.text!r} -> {s.text!r}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
