"""Call flows as data and the pure state machine that runs them."""

from dialog.flow import Flow, default_flow_path, load_default_flow, load_flow
from dialog.machine import DialogState, Machine
from dialog.matching import match_choice, normalize

__all__ = [
    "DialogState",
    "Flow",
    "Machine",
    "default_flow_path",
    "load_default_flow",
    "load_flow",
    "match_choice",
    "normalize",
]
