"""The shipped evaluation sets every candidate intent model is judged on (models/intents/eval)."""

from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parents[2] / "models" / "intents" / "eval"
DEFAULT_BENCHMARKS = (EVAL_DIR / "test.csv", EVAL_DIR / "dev.csv")
