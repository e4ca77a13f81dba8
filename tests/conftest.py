"""Shared test fixtures: where ../shared lives, and the bank flow's dialog machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from dialog.machine import Machine

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IVR_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip that says how to provide it."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip(f"shared data not found at {data}: clone the project with ../shared beside it "
                    "or set IVR_SHARED_DIR")
    return data


@pytest.fixture(scope="module")
def machine() -> Machine:
    """The dialog machine of the bundled bank flow (its states are values, so tests can share it)."""
    from dialog.flow import load_default_flow
    from dialog.machine import Machine

    return Machine(load_default_flow())


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for a test module (skipped where Chromium or axe-core is not installed)."""
    from tests.browser_support import BROWSER_WAIT_S, chromium

    with chromium(tmp_path_factory.mktemp("chromium-profile"), BROWSER_WAIT_S) as driver:
        yield driver
