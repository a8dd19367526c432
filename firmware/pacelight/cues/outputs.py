"""LED outputs: event consumers of :class:`~pacelight.events.CueChange`.

* :class:`SerialLed` — host driver for the MicroPython LED controller on USB serial (protocol v1,
  firmware/LED_PROTOCOL.md). A named worker thread owns the port: it connects (HELLO handshake),
  sends cue changes as soon as they arrive, sends a heartbeat every ``heartbeat_interval_s``,
  re-sends the cue after a controller reboot/fail-safe, and reconnects after an unplug with
  bounded exponential backoff.
* :class:`GpioLed` — optional LED wired straight to the Pi's GPIO (gpiozero imported lazily).
* :class:`TerminalLed` — one coloured status line in a terminal (the demo).

Every sink implements :class:`LedSink`: ``show(change)`` never blocks on I/O, ``close()`` stops it.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from pacelight.cues import ledproto
from pacelight.errors import PacelightError
from pacelight.events import CueChange

log = logging.getLogger(__name__)


class LedSink(Protocol):
    def show(self, change: CueChange) -> None: ...

    def close(self) -> None: ...


def fan_out(changes: Iterable[CueChange], sinks: Iterable[LedSink]) -> None:
    """Deliver cue changes to every sink (a failing sink is logged, never breaks the others)."""
    sinks = list(sinks)
    for ch in changes:
        for sink in sinks:
            try:
                sink.show(ch)
            except Exception:  # noqa: BLE001 - one broken LED must not stop the pipeline
                log.exception("LED sink %r failed", sink)


def _state_of(change: CueChange) -> tuple[str, str]:
    return (change.kind, change.detail) if change.state == "on" else ("off", "")


class LinkLost(Exception):
    """The controller stopped answering or the port went away."""


@dataclass(frozen=True, slots=True)
class SerialLedSettings:
    baudrate: int = 115200
    heartbeat_interval_s: float = 1.0  # the controller fails safe 3 s after the last one
    hello_timeout_s: float = 1.5
    silence_timeout_s: float = 3.5  # no reply at all for this long → reconnect
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    brightness: int | None = None  # None: the controller's configured brightness


class SerialLed:
    """Drives the LED controller over USB serial; start() once, show() from the pipeline."""

    def __init__(self, port: str, settings: SerialLedSettings | None = None,
                 on_write: Callable[[bytes, int], None] | None = None) -> None:
        self.port = port
        self.settings = settings or SerialLedSettings()
        self.on_write = on_write  # (line, time.perf_counter_ns()) after each write: benchmarks/tests
        self.board_id: str | None = None
        self.firmware_version: str | None = None
        self.connected = threading.Event()
        self.connections = 0
        self._desired: tuple[str, str] = ("off", "")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._seq = 0

    # ---- public API ---------------------------------------------------------------------------
    def start(self) -> SerialLed:
        if self._thread is not None:
            return self
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._thread = threading.Thread(target=self._run, name=f"pacelight-led-serial:{self.port}", daemon=True)
        self._thread.start()
        return self

    def show(self, change: CueChange) -> None:
        with self._lock:
            self._desired = _state_of(change)
        self._wake()

    def set_cue(self, kind: str, detail: str = "") -> None:
        with self._lock:
            self._desired = (kind, detail)
        self._wake()

    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)

    def close(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    # ---- worker -------------------------------------------------------------------------------
    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except (BlockingIOError, OSError):
                pass

    def _next_seq(self) -> int:
        self._seq = self._seq % 65535 + 1
        return self._seq

    def _run(self) -> None:
        import serial  # pyserial, lazily

        delay = self.settings.backoff_initial_s
        while not self._stop.is_set():
            try:
                ser = serial.Serial(self.port, baudrate=self.settings.baudrate, timeout=0, exclusive=True)
            except (serial.SerialException, OSError) as exc:
                log.debug("LED controller %s not available: %s", self.port, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.backoff_max_s)
                continue
            try:
                self._session(ser)
                delay = self.settings.backoff_initial_s
            except (serial.SerialException, OSError, LinkLost) as exc:
                if self.connected.is_set():
                    log.warning("LED controller %s lost: %s; reconnecting", self.port, exc)
                    delay = self.settings.backoff_initial_s
                else:
                    log.debug("LED controller %s handshake failed: %s", self.port, exc)
            finally:
                self.connected.clear()
                try:
                    ser.close()
                except Exception:  # noqa: BLE001
                    pass
            if not self._stop.is_set():
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.backoff_max_s)

    def _write(self, ser: Any, body: str) -> int:
        seq = self._next_seq()
        line = ledproto.frame(seq, body)
        ser.write(line)
        if self.on_write is not None:
            self.on_write(line, time.perf_counter_ns())
        return seq

    def _cue_body(self, state: tuple[str, str]) -> str:
        kind, detail = state
        body = f"CUE {kind}"
        if detail:
            body += f" d={detail}"
        if self.settings.brightness is not None and kind != "off":
            body += f" b={int(self.settings.brightness)}"
        return body

    def _session(self, ser: Any) -> None:
        s = self.settings
        buf = bytearray()
        fd = ser.fileno()

        def lines(timeout_s: float) -> list[ledproto.Reply]:
            r, _, _ = select.select([fd, self._wake_r], [], [], max(0.0, timeout_s))
            if self._wake_r in r:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
            out: list[ledproto.Reply] = []
            if fd in r:
                data = ser.read(max(1, ser.in_waiting))
                if not data:
                    raise LinkLost("port closed")
                buf.extend(data)
                while b"\n" in buf:
                    raw, _, rest = bytes(buf).partition(b"\n")
                    buf[:] = rest
                    rep = ledproto.parse(raw)
                    if rep is None:
                        log.debug("LED controller: damaged line %r", raw[:100])
                    else:
                        out.append(rep)
            return out

        # handshake
        hello = self._write(ser, "HELLO")
        deadline = time.monotonic() + s.hello_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkLost("no HELLO reply")
            rep = next((r for r in lines(left) if r.seq == hello and r.words[:2] == ("OK", "HELLO")), None)
            if rep is not None:
                break
        if len(rep.words) >= 4:
            self.board_id, self.firmware_version = rep.words[2], rep.words[3]
        self.connections += 1
        self.connected.set()
        log.info("LED controller %s connected: board %s firmware %s", self.port, self.board_id,
                 self.firmware_version)

        sent: tuple[str, str] | None = None
        last_rx = next_hb = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                desired = self._desired
            if desired != sent:
                self._write(ser, self._cue_body(desired))
                sent = desired
                next_hb = time.monotonic() + s.heartbeat_interval_s  # a CUE also feeds the watchdog
            now = time.monotonic()
            if now >= next_hb:
                self._write(ser, "HB")
                next_hb = now + s.heartbeat_interval_s
            for rep in lines(next_hb - time.monotonic()):
                last_rx = time.monotonic()
                w = rep.words
                if w[0] in ("BOOT", "FAILSAFE"):
                    log.info("LED controller %s: %s; re-sending cue", self.port, " ".join(w))
                    sent = None
                elif w[:2] == ("OK", "HB") and len(w) >= 3 and sent is not None and w[2] != sent[0]:
                    sent = None  # the controller shows something else: re-send
                elif w[0] == "ERR":
                    log.warning("LED controller %s rejected line %d: %s", self.port, rep.seq, " ".join(w[1:]))
            if time.monotonic() - last_rx > s.silence_timeout_s:
                raise LinkLost(f"no reply for {s.silence_timeout_s:.1f} s")
        # orderly stop: switch the LED off
        self._write(ser, "CUE off")


# ---- GPIO ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GpioLedSettings:
    red_pin: int = 17
    green_pin: int = 27
    blue_pin: int = 22
    brightness: float = 0.4  # 0..1


_GPIO_COLOURS: dict[str, tuple[float, float, float]] = {
    "overtalk": (1.0, 0.16, 0.0),
    "monologue": (1.0, 0.6, 0.0),
    "pace": (0.0, 0.35, 1.0),
    "energy": (0.6, 0.0, 1.0),
    "energy/more-energy": (0.0, 1.0, 0.3),
}


class GpioLed:
    """An RGB LED on the Pi's GPIO via gpiozero (imported when first used, never at import)."""

    def __init__(self, settings: GpioLedSettings | None = None, factory: Callable[..., Any] | None = None) -> None:
        self.settings = settings or GpioLedSettings()
        self._factory = factory
        self._led: Any = None

    def _device(self) -> Any:
        if self._led is None:
            factory = self._factory
            if factory is None:
                try:
                    from gpiozero import RGBLED  # type: ignore[import-not-found]
                except ImportError as exc:
                    raise PacelightError("GPIO LED needs gpiozero (apt install python3-gpiozero)") from exc
                factory = RGBLED
            s = self.settings
            self._led = factory(s.red_pin, s.green_pin, s.blue_pin)
        return self._led

    def show(self, change: CueChange) -> None:
        kind, detail = _state_of(change)
        led = self._device()
        if kind == "off":
            led.off()
            return
        rgb = _GPIO_COLOURS.get(f"{kind}/{detail}", _GPIO_COLOURS[kind])
        b = self.settings.brightness
        led.color = (rgb[0] * b, rgb[1] * b, rgb[2] * b)

    def close(self) -> None:
        if self._led is not None:
            self._led.off()
            self._led.close()
            self._led = None


# ---- terminal -----------------------------------------------------------------------------------
_ANSI = {"overtalk": "41;97", "monologue": "43;30", "pace": "44;97", "energy": "45;97",
         "energy/more-energy": "42;30"}
_TEXT = {"overtalk": "you are talking over the customer", "monologue": "let the customer speak",
         "pace": "slow down", "energy": "keep calm", "energy/more-energy": "more energy"}


class TerminalLed:
    """Renders the cue as one status line (colours when the stream is a terminal)."""

    def __init__(self, stream: TextIO | None = None, colour: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.colour = self.stream.isatty() if colour is None else colour
        self.state: tuple[str, str] = ("off", "")

    def render(self, t_s: float | None = None) -> str:
        kind, detail = self.state
        key = f"{kind}/{detail}" if detail and f"{kind}/{detail}" in _TEXT else kind
        stamp = f"{t_s:7.1f}s " if t_s is not None else ""
        if kind == "off":
            text = f"{stamp}LED  ○ off"
            return f"\r\x1b[2K{text}" if self.colour else text
        text = f"{stamp}LED  ● {kind}{'/' + detail if detail else ''}: {_TEXT[key]}"
        return f"\r\x1b[2K\x1b[{_ANSI[key]}m{text}\x1b[0m" if self.colour else text

    def show(self, change: CueChange) -> None:
        self.state = _state_of(change)
        line = self.render(change.t_s)
        self.stream.write(line if self.colour else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.colour:
            self.stream.write("\n")
            self.stream.flush()
