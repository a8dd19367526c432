"""Call start/end detection for the appliance.

Two sources, one interface (:class:`CallDetector`: ``update(chunk) -> list[CallEdge]``, positions
in input frames of the stream):

* :class:`ActivityCallDetector` — by audio activity with hangover: a call starts once either
  party has talked ``start_speech_s`` within the last ``start_window_s``; it ends after
  ``end_silence_s`` with both parties silent. It runs its own instance of the pipeline's
  echo-gated webrtcvad activity (:class:`pacelight.analysis.activity.EchoGatedActivity`) on the
  16 kHz frame clock, so sidetone, echo and line noise do not start calls. The start edge points
  back to the first talk frame of the triggering speech (the pre-roll the runtime keeps).
* :class:`SignalCallDetector` — a hook/HID/GPIO line (:class:`HookSignal`): off-hook = in call.
  :class:`GpioHookSignal` reads a Pi GPIO pin via gpiozero (imported lazily, on first use).
* ``detect = "off"`` needs no detector: the whole stream is one call (``edge replay``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from pacelight.edge.settings import CallsSection
from pacelight.errors import PacelightError
from pacelight.frames import BLOCK_SAMPLES, FRAME_S, FRAME_SAMPLES, SAMPLE_RATE_HZ

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallEdge:
    kind: Literal["start", "end"]
    at_frame: int  # input-stream frame index where the call starts / ends


class CallDetector(Protocol):
    def update(self, chunk: np.ndarray) -> list[CallEdge]: ...


class ActivityCallDetector:
    """Speech with hangover on either channel (see the module docstring)."""

    def __init__(self, rate_hz: int, settings: CallsSection, activity_settings=None) -> None:
        from pacelight.analysis.activity import EchoGatedActivity
        from pacelight.analysis.resample import StreamingResampler

        self.s = settings
        self.rate_hz = rate_hz
        self._resampler = StreamingResampler(rate_hz, SAMPLE_RATE_HZ, 2)
        self._activity = EchoGatedActivity(activity_settings)
        self._pending = np.zeros((0, 2), np.float32)
        self._frame = 0  # 10 ms frames processed
        self._window = deque()  # (frame index, talking frames) per block within start_window_s
        self._talk_in_window = 0
        self._last_talk = -(10**9)  # last frame with either party talking
        self.in_call = False

    def _to_input(self, frame: int) -> int:
        return int(round(frame * FRAME_S * self.rate_hz))

    def update(self, chunk: np.ndarray) -> list[CallEdge]:
        x = self._resampler.process(np.asarray(chunk, np.float32))
        buf = np.concatenate([self._pending, x]) if len(self._pending) else x
        n_blocks = len(buf) // BLOCK_SAMPLES
        edges: list[CallEdge] = []
        for b in range(n_blocks):
            block = buf[b * BLOCK_SAMPLES : (b + 1) * BLOCK_SAMPLES]
            edge = self._block(block)
            if edge is not None:
                edges.append(edge)
        self._pending = np.array(buf[n_blocks * BLOCK_SAMPLES :], copy=True)
        return edges

    def _block(self, block: np.ndarray) -> CallEdge | None:
        n = len(block) // FRAME_SAMPLES
        frames = block.reshape(n, FRAME_SAMPLES, 2).transpose(0, 2, 1)
        self._activity.process(frames)
        act = np.zeros(n, bool)
        for ch in self._activity.channels:
            act |= np.asarray(ch.last_strong, bool)
            if ch.talking:
                act[:] = True
        t0 = self._frame
        self._frame += n
        talk = int(act.sum())
        if talk:
            self._last_talk = t0 + int(np.flatnonzero(act)[-1])
        s = self.s
        win = int(round(s.start_window_s / FRAME_S))
        self._window.append((t0, talk, int(np.flatnonzero(act)[0]) + t0 if talk else -1))
        self._talk_in_window += talk
        while self._window and self._window[0][0] < self._frame - win:
            self._talk_in_window -= self._window.popleft()[1]
        if not self.in_call:
            if self._talk_in_window * FRAME_S >= s.start_speech_s:
                self.in_call = True
                first = next(f for _, c, f in self._window if c)
                start = max(0, first - int(round(s.preroll_s / FRAME_S)))
                log.info("call start detected at %.2f s (speech from %.2f s)", self._frame * FRAME_S, first * FRAME_S)
                return CallEdge("start", self._to_input(start))
        elif (self._frame - self._last_talk) * FRAME_S >= s.end_silence_s:
            self.in_call = False
            self._window.clear()
            self._talk_in_window = 0
            log.info("call end detected at %.2f s", self._frame * FRAME_S)
            return CallEdge("end", self._to_input(self._frame))
        return None


# ---- hook / HID / GPIO -------------------------------------------------------------------------------
class HookSignal(Protocol):
    """A line that says whether the agent's phone is off hook (in a call)."""

    def off_hook(self) -> bool: ...

    def close(self) -> None: ...


class GpioHookSignal:
    """A hook/HID line on a Pi GPIO pin (gpiozero imported on first use; pull-up, debounced)."""

    def __init__(self, pin: int, active_low: bool = True, debounce_s: float = 0.05,
                 factory: Callable[..., object] | None = None) -> None:
        self.pin, self.active_low, self.debounce_s = pin, active_low, debounce_s
        self._factory = factory
        self._dev = None

    def _device(self):
        if self._dev is None:
            factory = self._factory
            if factory is None:
                try:
                    from gpiozero import DigitalInputDevice  # type: ignore[import-not-found]
                except ImportError as exc:
                    raise PacelightError("calls.detect = 'gpio' needs gpiozero (apt install python3-gpiozero)") from exc
                factory = DigitalInputDevice
            self._dev = factory(self.pin, pull_up=self.active_low, bounce_time=self.debounce_s or None)
        return self._dev

    def off_hook(self) -> bool:
        return bool(self._device().is_active)  # gpiozero maps pull-up + low to active

    def close(self) -> None:
        if self._dev is not None:
            self._dev.close()  # type: ignore[attr-defined]
            self._dev = None


class SignalCallDetector:
    """Calls follow a :class:`HookSignal`; the signal is sampled once per chunk."""

    def __init__(self, signal: HookSignal) -> None:
        self.signal = signal
        self.in_call = False
        self._frames = 0

    def update(self, chunk: np.ndarray) -> list[CallEdge]:
        at = self._frames
        self._frames += len(chunk)
        state = self.signal.off_hook()
        if state == self.in_call:
            return []
        self.in_call = state
        return [CallEdge("start" if state else "end", at)]


def make_detector(settings: CallsSection, rate_hz: int, activity_settings=None,
                  signal: HookSignal | None = None) -> CallDetector | None:
    """The detector for ``calls.detect`` (None for "off")."""
    if settings.detect == "off":
        return None
    if settings.detect == "gpio":
        return SignalCallDetector(signal or GpioHookSignal(settings.gpio_pin, settings.gpio_active_low,
                                                           settings.gpio_debounce_s))
    return ActivityCallDetector(rate_hz, settings, activity_settings)
