"""pjsip's transaction timeout (64*T1, 32 s by the RFC), shortened so a hostile peer cannot hold a call slot.

A peer that sends an INVITE and never ACKs the answer, or never answers our BYE, holds one of pjsua's few
call slots until the transaction layer gives up: 64*T1 = 32 s by default. pjsua2 does not expose the
timer, but pjsip's public C function `pjsip_tsx_set_timers(t1, t2, t4, td)` sets it (`td` is also the
timeout of every 64*T1 timer: B, F, H, J), and the pjsua2-python extension exports it. T1, T2 and T4 are
left alone, so retransmissions keep their RFC 3261 pace; only the point where an unanswered transaction
is abandoned comes earlier.
"""

from __future__ import annotations

import ctypes
import logging

import pjsua2

log = logging.getLogger(__name__)


def set_transaction_timeout(timeout_ms: int) -> bool:
    """Sets pjsip's 64*T1 transaction timeout (after libInit); False (logged) where the symbol is missing."""
    try:
        lib = ctypes.CDLL(pjsua2._pjsua2.__file__)  # the loaded extension: the same pjsip instance
        set_timers = lib.pjsip_tsx_set_timers
    except (OSError, AttributeError) as exc:
        log.warning("cannot shorten pjsip's transaction timeout (%s): unanswered INVITEs hold a slot for 32 s",
                    exc)
        return False
    set_timers.argtypes = [ctypes.c_uint] * 4
    set_timers.restype = None
    set_timers(0, 0, 0, int(timeout_ms))  # 0: unchanged
    return True
