"""One call: transport audio -> VAD and turns -> ASR -> dialog -> TTS -> transport audio.

The session is driven by a 20 ms tick (`tick(caller_frame) -> agent_frame`) from whatever carries
the call: the WAV-file transport for `ivr call`, the SIP media port for real calls. A tick never
waits for a model: ASR and TTS run on the call's worker lanes and their results join the call's
timeline when they are ready (see ivr.call.work). Barge-in (caller speech or a key press during an
interruptible prompt) clears the agent's audio on the very tick it is detected.

The session runs the dialog, its actions and the call's timers (no input, digit entry, the longest call)
over its parts: the hearing (ivr.call.hearing: the caller's turns, their recognition and voice emotion),
the keypad (ivr.call.keypad) and the voice (ivr.call.speaking).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asr.base import Transcript
from asr.turns import Paused, SpeechDropped, SpeechStarted, TurnEnded
from dialog.actions import Action, Hangup, Listen, Play, Say, Transfer
from dialog.events import CallStarted, DigitsEntered, Event, MaxDurationReached, NoInput, RecognitionFailed, Utterance
from dialog.machine import DialogState
from ivr.call import dialogturn
from ivr.call import events as ev
from ivr.call.dialogturn import TRANSFER_ON_FAILURE
from ivr.call.eventlog import EventLog
from ivr.call.hearing import Heard, Hearing
from ivr.call.keypad import Keypad
from ivr.call.privacy import redact_event
from ivr.call.services import Services
from ivr.call.speaking import Speaking, TranscriptLine
from ivr.call.work import Work
from telephony.audio.frame import Frame
from telephony.audio.recorder import StereoRecorder
from telephony.clock import Clock

log = logging.getLogger(__name__)



class CallSession:
    def __init__(self, services: Services, clock: Clock, sample_rate_hz: int,
                 out_dir: Path | None = None, call_id: str = "call") -> None:
        self.call_id = call_id
        self.sample_rate_hz = sample_rate_hz
        self._services = services
        self._nlu = services.nlu
        """The NLU this call started with: a model accepted meanwhile (ivr.learn.watch) serves the next calls."""
        self._cfg = services.config.call
        self._clock = clock
        self._out_dir = out_dir
        # events.jsonl on disk gets the store's redaction (read-backs of account numbers); memory keeps all
        self.log = EventLog(clock, out_dir / "events.jsonl" if out_dir else None,
                            redact=None if self._cfg.record_digits else redact_event)
        self._recorder = StereoRecorder(out_dir / "recording.wav", sample_rate_hz) if out_dir else None
        self.transcript: list[TranscriptLine] = []
        self._hearing = Hearing(services, clock, sample_rate_hz, call_id, self.log, self.transcript)
        self._voice = Speaking(services, clock, sample_rate_hz, call_id, self.log, self.transcript)
        self._keypad = Keypad()
        self._actions: deque[Action] = deque()
        self._listen: Listen | None = None
        self._listen_deadline_ms = 0.0
        self._awaiting_reply_since_ms: float | None = None
        self._started_ms = clock.now_ms()
        self._max_duration_sent = False
        self._state: DialogState | None = None
        self.ended = False
        self.outcome = ""
        self.end_reason = ""
        self.transfer_target = ""
        self._audio_taps: list[Callable[[Frame, Frame], None]] = []

    @property
    def flow(self) -> Any:
        """The dialog.flow.Flow this call runs."""
        return self._services.machine.flow

    def add_audio_tap(self, tap: Callable[[Frame, Frame], None]) -> None:
        """Call `tap(caller, agent)` with each tick's two frames (e.g. the live-listen spool); it runs on the
        call's audio thread, so it must only queue them."""
        self._audio_taps.append(tap)

    # ---- inputs from the transport -------------------------------------------------------------

    def start(self) -> None:
        self.log.emit(ev.CallStarted(call_id=self.call_id, sample_rate_hz=self.sample_rate_hz,
                                     flow=self._services.machine.flow.name))
        self._dispatch(CallStarted())

    def dtmf(self, digit: str) -> None:
        """A key press from the transport (RFC 4733 or SIP INFO); safe from any thread."""
        self._keypad.press(digit)

    def caller_hung_up(self) -> None:
        self.line_closed("caller-hangup", "caller hung up")

    def line_closed(self, outcome: str, reason: str) -> None:
        """The transport ended the call (the caller hung up, the server shut down, RTP stopped)."""
        if not self.ended:
            self._end(outcome, reason)

    def tick(self, caller: Frame | None) -> Frame:
        """One 20 ms step: hear the caller's frame, move the call on, return the agent's frame."""
        now = self._clock.now_ms()
        if caller is None:
            caller = Frame.silence(self.sample_rate_hz, now)
        if not self.ended:
            self._hear(caller)
            self._take_keys()
            self._collect_results()
            self._check_timers(now)
            self._run_actions()
        agent = self._next_agent_frame(now)
        if self._recorder is not None:
            self._recorder.write(caller, agent)
        for tap in self._audio_taps:
            tap(caller, agent)
        return agent

    # ---- hearing (ivr.call.hearing) -------------------------------------------------------------

    def _hear(self, caller: Frame) -> None:
        """The caller's frame: the session answers each turn event as it comes (a barge-in at the onset,
        the turn's recognition when the agent listens, the reply's clock at its end)."""
        for event in self._hearing.hear(caller):
            if isinstance(event, SpeechStarted):
                self._on_speech_started(event)
            elif isinstance(event, TurnEnded):
                self._on_turn_ended(event)
            elif isinstance(event, SpeechDropped):
                self._on_speech_dropped(event)
            elif isinstance(event, Paused):
                self._hearing.paused(event)

    def _speaking(self) -> bool:
        return self._voice.busy

    def _on_speech_started(self, event: SpeechStarted) -> None:
        self._hearing.started(event)
        if self._speaking() and self._voice.interruptible and self._cfg.barge_in:
            self._barge_in("speech", event.onset_ms)
        if self._listen is not None:
            self._hearing.recognize(event, self._listen, self._state.node if self._state else None)

    def _on_turn_ended(self, event: TurnEnded, early: bool = False) -> None:
        if self._hearing.turn_ended(event, early):
            self._awaiting_reply_since_ms = event.end_ms

    def _on_speech_dropped(self, event: SpeechDropped) -> None:
        if self._hearing.dropped(event) and self._listen is not None:
            self._listen_deadline_ms = self._clock.now_ms() + self._listen.no_input_timeout_ms

    def _barge_in(self, source: str, onset_ms: float) -> None:
        now = self._clock.now_ms()
        self._voice.interrupt(now)
        while self._actions and isinstance(self._actions[0], Say | Play):
            self._actions.popleft()
        self.log.emit(ev.BargeIn(source=source, onset_ms=round(onset_ms, 1), stopped_ms=round(now, 1),
                      reaction_ms=round(now - onset_ms, 1)))
        self._run_actions()

    def _take_keys(self) -> None:
        for key in self._keypad.take():
            now = self._clock.now_ms()
            self.log.emit(ev.Dtmf(digit=key if self._cfg.record_digits else "*"))
            if self._keypad.ends_last_entry(key):
                continue
            if self._speaking() and self._voice.interruptible and self._cfg.barge_in:
                self._barge_in("dtmf", now)
            if self._listen is None:
                continue
            digits = self._keypad.type(key, self._listen, now)
            if digits is not None:
                self._digits_done(digits)

    def _digits_done(self, digits: str) -> None:
        self._awaiting_reply_since_ms = self._clock.now_ms()
        self._stop_listening()
        self._dispatch(DigitsEntered(digits))

    # ---- results from the worker lanes -----------------------------------------------------------

    def _collect_results(self) -> None:
        if (held := self._hearing.take_held()) is not None:
            self._dispatch_utterance(held)
        if (settled := self._hearing.settled_turn()) is not None:
            self._on_turn_ended(settled, early=True)
        if (heard := self._hearing.poll()) is not None:
            self._on_recognized(heard)

    def _on_recognized(self, heard: Heard) -> None:
        result = heard.transcript
        if result is None:
            self._stop_listening()
            self._dispatch(RecognitionFailed(heard.error))
            return
        if not result.text.strip():
            self._awaiting_reply_since_ms = None
            if self._listen is not None:
                self._listen_deadline_ms = self._clock.now_ms() + self._listen.no_input_timeout_ms
            return
        self._stop_listening()
        if self._hearing.wait_for_emotion(result):
            return
        self._dispatch_utterance(result)

    def _dispatch_utterance(self, result: Transcript) -> None:
        """Runs the NLU (intent, FAQ) on the turn, then the dialog (ivr.call.dialogturn); the recognizer's
        next-best hypotheses are understood too when the best one means nothing where the call is."""
        state = self._state
        judge = None if state is None else lambda utterance: self._services.machine.judge(state, utterance)
        dialogturn.dispatch_utterance(self._nlu, self.log, result.text, result.confidence, self._dispatch,
                                      lambda: self._state, alternatives=result.hypotheses()[1:], judge=judge)

    # ---- timers --------------------------------------------------------------------------------

    def _check_timers(self, now: float) -> None:
        if not self._max_duration_sent and now - self._started_ms >= self._cfg.max_call_ms:
            self._max_duration_sent = True
            self._voice.silence()
            self._actions.clear()
            self._stop_listening()
            self._dispatch(MaxDurationReached())
            return
        if self._listen is None:
            return
        if self._keypad.digits and now >= self._keypad.deadline_ms:
            self._digits_done(self._keypad.finish())
        elif not self._keypad.digits and self._hearing.quiet and now >= self._listen_deadline_ms:
            self.log.emit(ev.NoInput(timeout_ms=self._listen.no_input_timeout_ms))
            self._stop_listening()
            self._dispatch(NoInput())

    def _stop_listening(self) -> None:
        self._listen = None
        self._keypad.clear()

    # ---- dialog and actions --------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, Utterance):
            event = self._hearing.with_emotion(event)
        self._state, actions = dialogturn.step(self._services.machine, self._state, event, self.log, self.call_id)
        self._actions.extend(actions)
        self._run_actions()

    def _run_actions(self) -> None:
        while self._actions and not self.ended:
            action = self._actions[0]
            if isinstance(action, Say | Play):
                if self._speaking():
                    return
                batch: list[Say | Play] = []
                while self._actions and isinstance(self._actions[0], Say | Play):
                    batch.append(self._actions.popleft())  # type: ignore[arg-type]
                self._start_speech(batch)
                continue
            if self._speaking():
                return
            self._actions.popleft()
            if isinstance(action, Listen):
                self._listen = action
                self._keypad.clear()
                self._listen_deadline_ms = self._clock.now_ms() + action.no_input_timeout_ms
                self.log.emit(ev.Listening(node=self._state.node if self._state else "",
                              timeout_ms=action.no_input_timeout_ms, asks=action.kind, about=action.about))
            elif isinstance(action, Transfer):
                self._end("transferred", action.reason, action.target)
            elif isinstance(action, Hangup):
                self._end("completed", action.reason)

    def _start_speech(self, items: list[Say | Play]) -> None:
        self._voice.start(items)

    def _next_agent_frame(self, now: float) -> Frame:
        error = self._voice.poll()
        if error is not None:
            self._on_speech_failed(error)
        frame = self._voice.next_frame(now)
        if frame is None:
            return Frame.silence(self.sample_rate_hz, now)
        if self._awaiting_reply_since_ms is not None:
            self.log.emit(ev.ReplyStarted(turn_end_ms=round(self._awaiting_reply_since_ms, 1),
                          latency_ms=round(now - self._awaiting_reply_since_ms, 1)))
            self._awaiting_reply_since_ms = None
        self._voice.sent(frame, now)
        return frame

    def _on_speech_failed(self, error: BaseException) -> None:
        log.error("call %s: speech synthesis failed: %s", self.call_id, type(error).__name__)
        self.log.emit(ev.TtsFailed(error=type(error).__name__))
        self._actions.clear()
        self._end("transferred", "tts-failure", TRANSFER_ON_FAILURE)

    def _end(self, outcome: str, reason: str, target: str = "") -> None:
        self.ended = True
        self.outcome, self.end_reason, self.transfer_target = outcome, reason, target
        self._stop_listening()
        self._hearing.stop()
        self.log.emit(ev.CallEnded(outcome=outcome, reason=reason, target=target,
                      node=self._state.node if self._state else "",
                      slots=dict(self._state.slots) if self._state else {}))

    # ---- for drivers ---------------------------------------------------------------------------

    def pending_work(self) -> list[Work[Any]]:
        """Model work the call is waiting on (a virtual-clock driver waits for these)."""
        works: list[Work[Any]] = []
        if self._voice.work is not None:
            works.append(self._voice.work)
        works.extend(self._hearing.pending_work())
        return works

    @property
    def state(self) -> DialogState | None:
        """The dialog's state (frozen; None before the call starts)."""
        return self._state

    @property
    def playing(self) -> bool:
        return self._speaking()

    def announce(self, text: str) -> None:
        """Say text after the dialog has ended (a transport's notice, e.g. that a transfer failed);
        the transport keeps ticking while `playing`."""
        self._start_speech([Say(text, barge_in=False)])

    def record(self, caller: Frame, other: Frame) -> None:
        """Record a frame pair the session did not produce (a human agent bridged in after the dialog)."""
        if self._recorder is not None:
            self._recorder.write(caller, other)

    def close(self) -> None:
        for work in self.pending_work():
            work.cancel()
        self._hearing.close()
        self._voice.close()
        if self._recorder is not None:
            self._recorder.close()
        self.log.close()

