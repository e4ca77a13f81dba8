"""`ivr test SUITE`: run conversation-test scenarios as whole simulated calls and report which went right."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

EXIT_FAILED = 1
EXIT_BAD_SUITE = 2


def register(sub: Any) -> None:
    from ivr.cliargs import add_model_args

    p = sub.add_parser("test", help="run conversation-test scenarios (whole simulated calls) and check them")
    p.add_argument("suite", help="a scenario .yaml file or a folder of them (searched recursively)")
    p.add_argument("--tag", action="append", default=[], help="only scenarios with this tag (repeatable)")
    p.add_argument("-k", dest="keyword", help="only scenarios whose name or file contains this text")
    p.add_argument("--jobs", type=int, default=1, help="calls run at once (default 1; they share the models)")
    p.add_argument("--junit", help="write JUnit XML here (for CI)")
    p.add_argument("--json", help="write every scenario's expectations, turns (said vs heard), WER and latencies")
    p.add_argument("--out", help="write each call's recording, events and transcript under OUT/<scenario>/")
    p.add_argument("--cache", default="~/.cache/ivr/caller-turns",
                   help="where synthesized caller turns are kept for reruns (default ~/.cache/ivr/caller-turns)")
    p.add_argument("--no-cache", action="store_true", help="synthesize every caller turn afresh, keep nothing")
    p.add_argument("-q", "--quiet", action="store_true", help="only the totals and failures")
    add_model_args(p)
    p.set_defaults(func=cmd_test)


def cmd_test(args: argparse.Namespace) -> int:
    from ivr.convtest.scenario import FlowCatalog, ScenarioError, load_suite

    try:
        scenarios = load_suite(args.suite, args.tag or None, args.keyword, FlowCatalog(args.flow or ""))
    except ScenarioError as exc:
        print(f"ivr test: {exc}", file=sys.stderr)
        return EXIT_BAD_SUITE
    if not scenarios:
        print("ivr test: no scenario matches the filters", file=sys.stderr)
        return EXIT_BAD_SUITE
    with tempfile.TemporaryDirectory(prefix="ivr-test-") as tmp:
        cache = None if args.no_cache else Path(args.cache).expanduser()
        return run_suite(args, scenarios, cache, Path(tmp))


def run_suite(args: argparse.Namespace, scenarios: list[Any], cache: Path | None, tmp: Path) -> int:
    from ivr.call.services import Services
    from ivr.cliargs import agent_config
    from ivr.convtest import report
    from ivr.convtest.runner import ScenarioResult, SuiteRunner, agent_piper
    from ivr.convtest.scenario import FlowCatalog, ScenarioError
    from ivr.convtest.voices import CallerVoices

    out = sys.stdout
    config = agent_config(args)
    print(f"ivr test: {len(scenarios)} scenario(s) from {args.suite}; loading models ...", file=out, flush=True)
    services = Services.load(config, presynthesize=True)
    voices = CallerVoices(cache, agent_piper(services))
    runner = SuiteRunner(services, FlowCatalog(args.flow or ""), voices, (cache or tmp) / "line",
                         Path(args.out) if args.out else None)
    try:
        runner.prepare(scenarios)
    except ScenarioError as exc:
        print(f"ivr test: {exc}", file=sys.stderr)
        return EXIT_BAD_SUITE

    def show(result: ScenarioResult) -> None:
        if not args.quiet:
            report.print_row(result, out)

    if not args.quiet:
        report.print_header(out)
    results = runner.run_all(scenarios, max(1, args.jobs), on_result=show)
    report.print_details(results, out)
    summary = report.summarize(results)
    report.print_summary(summary, out)
    if args.json:
        report.write_json(args.json, report.to_json(args.suite, results, summary))
    if args.junit:
        report.write_junit(args.junit, report.to_junit(args.suite, results))
    where = f"cache {cache}" if cache is not None else "no cache"
    print(f"caller turns: {voices.synthesized} synthesized, {voices.cached} from the cache ({where})", file=out)
    written = [f for f in (args.json, args.junit, args.out) if f]
    if written:
        print(f"written: {', '.join(written)}", file=out)
    return 0 if all(r.passed for r in results) else EXIT_FAILED
