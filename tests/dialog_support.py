"""What dialog tests ask of a Machine's answer: the prompts it says, and the state at the main menu."""

from __future__ import annotations

from collections.abc import Iterable

from dialog.actions import Action, Say
from dialog.machine import DialogState, Machine


def says(actions: Iterable[Action]) -> list[str]:
    """The texts of the Say actions, in order."""
    return [action.text for action in actions if isinstance(action, Say)]


def at_menu(machine: Machine) -> DialogState:
    """The state after the greeting: the flow's first listening node."""
    state, _ = machine.start()
    return state
