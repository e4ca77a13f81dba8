"""The shipped monitoring files (contrib/monitoring): the alert rules pass promtool's check and their own unit
tests, and every metric that the rules and the Grafana dashboard read is one the agent exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import ivr.console.metrics  # noqa: F401  (registers the console's metrics)
import ivr.serve.metrics  # noqa: F401  (registers ivr serve's metrics)

MONITORING = Path(__file__).resolve().parents[1] / "contrib" / "monitoring"
PROMTOOL = shutil.which("promtool")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def _used(text: str) -> set[str]:
    return set(re.findall(r"\b(ivr_[a-z_]+)\b", text))


@pytest.mark.skipif(PROMTOOL is None, reason="promtool comes with Debian's prometheus package (scripts/setup.sh)")
def test_alert_rules_are_valid_and_fire_as_their_unit_tests_say():
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        out = subprocess.run([str(PROMTOOL), *args], cwd=MONITORING, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr


def test_dashboard_and_rules_read_only_metrics_the_agent_exports():
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    used = _used(exprs) | _used((MONITORING / "alerts.yml").read_text())
    assert {"ivr_voice_to_voice_seconds_bucket", "ivr_calls_refused_total"} <= used
    assert used - _exported() == set()
