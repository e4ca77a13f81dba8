"""What the web call page is told as the call goes: the call's events as small JSON messages on the data
channel. They go only to the caller's own page (their words, the agent's), and are never logged."""

from __future__ import annotations

from typing import Any

from ivr.call import events as ev


def page_message(event: ev.CallEvent) -> dict[str, Any] | None:
    """The page's message for an event, or None for events the page does not show."""
    match event:
        case ev.CallStarted(call_id=call_id):
            return {"type": "started", "call_id": call_id}
        case ev.AsrPartial(text=text):
            return {"type": "partial", "text": text}
        case ev.Transcript(text=text, confidence=confidence) if text.strip():
            return {"type": "transcript", "speaker": "caller", "text": text, "confidence": confidence}
        case ev.Said(text=text):
            return {"type": "said", "speaker": "agent", "text": text}
        case ev.DialogStep(node=node, event=cause):
            return {"type": "state", "node": node, "event": cause}
        case ev.Listening(node=node):
            return {"type": "listening", "node": node}
        case ev.NluResult(intent=intent, confidence=confidence, faq=faq):
            return {"type": "nlu", "intent": intent, "confidence": confidence, "faq": faq}
        case ev.Emotion(label=label, negativity=negativity):
            return {"type": "emotion", "label": label, "negativity": round(negativity, 2)}
        case ev.BargeIn(source=source):
            return {"type": "barge_in", "source": source}
        case ev.ReplyStarted(latency_ms=latency_ms):
            return {"type": "reply", "latency_ms": latency_ms}
        case ev.CallEnded(outcome=outcome, reason=reason, node=node):
            return {"type": "ended", "outcome": outcome, "reason": reason, "node": node}
        case ev.CallbackRequested():
            return {"type": "callback"}
    return None
