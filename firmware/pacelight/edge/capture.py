"""Live audio capture: a never-blocking callback into a preallocated ring buffer.

The sound-card callback only copies its samples into :class:`RingBuffer` (numpy, fixed size;
a write that does not fit is dropped and counted as an xrun) and stamps the write with the
capture time. The analysis thread reads from the ring at its own pace.

The stream seam is :class:`StreamOpener`: ``open(on_audio) -> stream`` where ``on_audio(data
(n, ch) float32, t_capture_s, overflow)`` is the callback and ``stream.close()`` stops it.

* :class:`PyAudioOpener` — the sound card (PyAudio imported lazily; the ``audio`` extra).
* :class:`WavOpener` — a fake sound card that plays a WAV file (or an array) in real-time-sized
  chunks from its own thread (``speed`` 1 = real time, k = k× faster, 0 = as fast as the reader
  keeps up) and can inject xruns and unplugs: tests, ``edge replay`` and the benchmark.

:class:`CaptureSupervisor` opens the device(s), watches for stalls (no callback for
``stall_timeout_s`` = unplugged) and reopens with bounded exponential backoff. In two-device
mode the second device (the receive path) runs on its own clock: :class:`DriftCompensator`
resamples it by a slowly adapted ratio tracked from its ring fill.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from pacelight.errors import PacelightError

log = logging.getLogger(__name__)

OnAudio = Callable[[np.ndarray, float, bool], None]


class DeviceUnavailable(PacelightError):
    """The audio device cannot be opened (unplugged, busy, not found)."""


class Stream(Protocol):
    def close(self) -> None: ...


class StreamOpener(Protocol):
    rate_hz: int
    channels: int

    def open(self, on_audio: OnAudio) -> Stream: ...


# ---- ring buffer --------------------------------------------------------------------------------
class RingBuffer:
    """Single-producer/single-consumer ring of float32 frames with per-write capture times.

    ``write`` (the audio callback) never allocates audio memory and never waits beyond a short
    lock; a write that does not fit whole is dropped and counted in ``xruns``.
    """

    def __init__(self, capacity_frames: int, channels: int, max_writes: int = 4096) -> None:
        if capacity_frames < 1 or channels < 1:
            raise ValueError("capacity_frames and channels must be >= 1")
        self.capacity = int(capacity_frames)
        self.channels = int(channels)
        self._buf = np.zeros((self.capacity, self.channels), np.float32)
        self._w_end = np.zeros(max_writes, np.int64)  # absolute frame index after each write
        self._w_t = np.zeros(max_writes, np.float64)  # capture time of each write (monotonic s)
        self._nw = 0  # writes so far
        self._rw = 0  # writes fully consumed by the reader
        self._head = 0  # absolute frames written
        self._tail = 0  # absolute frames read
        self._lock = threading.Lock()
        self.data_ready = threading.Event()
        self.xruns = 0  # writes dropped because the ring was full (or reported by the device)
        self.dropped_frames = 0

    def write(self, data: np.ndarray, t_capture_s: float) -> bool:
        n = len(data)
        with self._lock:
            if self._head + n - self._tail > self.capacity or self._nw - self._rw >= len(self._w_end):
                self.xruns += 1
                self.dropped_frames += n
                return False
            i = self._head % self.capacity
            first = min(n, self.capacity - i)
            self._buf[i : i + first] = data[:first]
            if first < n:
                self._buf[: n - first] = data[first:]
            self._head += n
            k = self._nw % len(self._w_end)
            self._w_end[k] = self._head
            self._w_t[k] = t_capture_s
            self._nw += 1
        self.data_ready.set()
        return True

    def count_xrun(self) -> None:
        with self._lock:
            self.xruns += 1

    @property
    def fill(self) -> int:
        return self._head - self._tail

    def read_write(self) -> tuple[np.ndarray, float] | None:
        """Take the oldest unread write (one callback's worth): ``(frames, capture time)``."""
        with self._lock:
            if self._rw >= self._nw:
                self.data_ready.clear()
                return None
            k = self._rw % len(self._w_end)
            end, t = int(self._w_end[k]), float(self._w_t[k])
            out = self._take(end - self._tail)
            self._rw += 1
            return out, t

    def read(self, n: int) -> np.ndarray:
        """Take exactly ``min(n, fill)`` frames regardless of write boundaries."""
        with self._lock:
            n = min(int(n), self._head - self._tail)
            out = self._take(n)
            while self._rw < self._nw and self._w_end[self._rw % len(self._w_end)] <= self._tail:
                self._rw += 1
            return out

    def _take(self, n: int) -> np.ndarray:
        i = self._tail % self.capacity
        first = min(n, self.capacity - i)
        out = np.empty((n, self.channels), np.float32)
        out[:first] = self._buf[i : i + first]
        if first < n:
            out[first:] = self._buf[: n - first]
        self._tail += n
        return out

    def clear(self) -> None:
        with self._lock:
            self._tail = self._head
            self._rw = self._nw
            self.data_ready.clear()


# ---- clock drift between two devices ------------------------------------------------------------
class DriftCompensator:
    """Resample the second device's stream onto the first one's clock.

    The ratio (second-device frames consumed per output frame) starts at 1 and follows the
    second ring's smoothed fill (PI control): more backlog than the target → consume slightly
    faster; the integral term converges on the two clocks' ratio. It is bounded by ``max_ppm`` and
    acts over ``time_constant_s`` so the correction never audibly modulates pitch. Linear interpolation, vectorised per chunk; state carries across chunks.
    """

    def __init__(self, rate_hz: int, target_fill_frames: int, max_ppm: float = 1000.0,
                 time_constant_s: float = 20.0) -> None:
        self.rate_hz = rate_hz
        self.target = float(target_fill_frames)
        self.max_dev = max_ppm * 1e-6
        self.tc_s = time_constant_s
        self.ratio = 1.0
        self.primed = False  # consumption starts once the second ring holds the target fill
        self._fill = 0.0
        self._integral = 0.0
        self._pos = 0.0  # fractional read position into self._hist
        self._hist = np.zeros(0, np.float32)

    def update_ratio(self, fill_frames: int, dt_s: float) -> None:
        """PI control of the second ring's (smoothed) fill: the integral converges on the clock ratio."""
        if not self.primed:
            self.primed = fill_frames >= self.target
            self._fill = float(fill_frames)
            return
        a = min(1.0, 4.0 * dt_s / self.tc_s)  # callback jitter is ± one period: smooth it out first
        self._fill += a * (fill_frames - self._fill)
        err_s = (self._fill - self.target) / self.rate_hz
        self._integral = float(np.clip(self._integral + err_s * dt_s / self.tc_s**2, -self.max_dev, self.max_dev))
        self.ratio = 1.0 + float(np.clip(err_s / self.tc_s + self._integral, -self.max_dev, self.max_dev))

    def needed(self, n_out: int) -> int:
        """Second-device frames needed (beyond those held) to produce ``n_out`` frames."""
        if not self.primed:
            return 0
        last = self._pos + (n_out - 1) * self.ratio
        return max(0, int(np.floor(last)) + 2 - len(self._hist))

    def process(self, x: np.ndarray, n_out: int) -> np.ndarray:
        """Append ``x`` (mono) and produce ``n_out`` frames (zeros where data is missing)."""
        if not self.primed:
            return np.zeros(n_out, np.float32)
        h = np.concatenate([self._hist, np.asarray(x, np.float32).reshape(-1)])
        pos = self._pos + self.ratio * np.arange(n_out)
        i0 = np.floor(pos).astype(np.int64)
        frac = (pos - i0).astype(np.float32)
        ok = i0 + 1 < len(h)
        out = np.zeros(n_out, np.float32)
        if ok.any():
            j = i0[ok]
            out[ok] = h[j] * (1 - frac[ok]) + h[j + 1] * frac[ok]
        nxt = self._pos + self.ratio * n_out
        drop = min(int(np.floor(nxt)), len(h))
        self._hist = h[drop:]
        self._pos = nxt - drop
        return out


# ---- PyAudio --------------------------------------------------------------------------------------
class PyAudioOpener:
    """Opens a PortAudio input stream by device name substring or index (re-scanned per open)."""

    def __init__(self, device: str, rate_hz: int, channels: int, chunk_frames: int) -> None:
        self.device = device
        self.rate_hz = rate_hz
        self.channels = channels
        self.chunk_frames = chunk_frames

    def open(self, on_audio: OnAudio) -> Stream:
        try:
            import pyaudio  # lazy: native PortAudio, the `audio` extra
        except ImportError as exc:
            raise PacelightError("live capture needs PyAudio: pip install 'pacelight[audio]'") from exc
        pa = pyaudio.PyAudio()  # a fresh instance re-scans devices (replugged cards get new indices)
        try:
            index = _find_device(pa, self.device)
            scale = np.float32(1.0 / 32768.0)
            channels = self.channels
            overflow_flag = pyaudio.paInputOverflow
            scratch = np.zeros((4 * self.chunk_frames, channels), np.float32)  # preallocated

            def callback(in_data, frame_count, time_info, status):
                t = time.monotonic()
                pcm = np.frombuffer(in_data, np.int16).reshape(-1, channels)
                n = len(pcm)
                data = scratch[:n] if n <= len(scratch) else np.empty((n, channels), np.float32)
                np.multiply(pcm, scale, out=data)
                on_audio(data, t, bool(status & overflow_flag))  # copies into the ring, never blocks
                return (None, pyaudio.paContinue)

            stream = pa.open(format=pyaudio.paInt16, channels=channels, rate=self.rate_hz, input=True,
                             input_device_index=index, frames_per_buffer=self.chunk_frames,
                             stream_callback=callback)
        except (OSError, ValueError) as exc:
            pa.terminate()
            raise DeviceUnavailable(f"cannot open input device {self.device or 'default'!r}: {exc}") from None
        except BaseException:
            pa.terminate()
            raise
        return _PyAudioStream(pa, stream)


def _find_device(pa, spec: str) -> int | None:
    if not spec:
        return None
    if spec.isdigit():
        return int(spec)
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if spec.lower() in str(info.get("name", "")).lower() and int(info.get("maxInputChannels", 0)) > 0:
            return i
    raise DeviceUnavailable(f"no input device matching {spec!r}")


class _PyAudioStream:
    def __init__(self, pa, stream) -> None:
        self._pa, self._stream = pa, stream

    def close(self) -> None:
        try:
            self._stream.stop_stream()
            self._stream.close()
        except OSError:
            pass
        finally:
            self._pa.terminate()


# ---- fake sound card: a WAV file ------------------------------------------------------------------
@dataclass
class FaultPlan:
    """Faults a :class:`WavOpener` injects, by audio time (seconds of the file)."""

    xruns_at_s: tuple[float, ...] = ()  # drop one chunk and flag an input overflow
    unplug_at_s: tuple[float, ...] = ()  # the device vanishes (callbacks stop, opens fail) ...
    unplug_for_s: float = 2.0  # ... for this long (wall-clock seconds)


class WavOpener:
    """A fake input device playing audio in real-time-sized chunks (the stream seam for tests)."""

    def __init__(self, source: str | Path | np.ndarray, rate_hz: int | None = None, chunk_s: float = 0.02,
                 speed: float = 1.0, after_eof: str = "stop", faults: FaultPlan | None = None,
                 space: Callable[[], int] | None = None, clock_error_ppm: float = 0.0) -> None:
        if isinstance(source, np.ndarray):
            if rate_hz is None:
                raise ValueError("rate_hz is required for an array source")
            a = np.asarray(source, np.float32)
            self._audio = a if a.ndim == 2 else np.stack([a, np.zeros_like(a)], axis=1)
            self._info = None
            self.rate_hz = int(rate_hz)
        else:
            from pacelight.audio.wavfile import probe

            self._info = probe(source)
            self._audio = None
            self.rate_hz = self._info.rate_hz
        self.channels = 2
        self.chunk_s = chunk_s
        self.speed = speed
        self.after_eof = after_eof
        self.faults = faults or FaultPlan()
        self.space = space  # speed 0: frames the reader can take now (backpressure instead of xruns)
        self.clock = 1.0 + clock_error_ppm * 1e-6  # a device whose sample clock runs fast (> 0) or slow
        self.finished = threading.Event()  # the whole file was delivered (after_eof "stop")
        self._pos_s = 0.0  # audio time delivered so far (survives reopen: a replug resumes the "call")
        self._unplugged_until = 0.0
        self._pending_unplugs = sorted(self.faults.unplug_at_s)
        self._pending_xruns = sorted(self.faults.xruns_at_s)
        self._chunks = None
        self.opens = 0

    def _iter_chunks(self):
        if self._audio is not None:
            n = max(1, int(round(self.rate_hz * self.chunk_s)))
            for i in range(0, len(self._audio), n):
                yield self._audio[i : i + n]
            return
        from pacelight.audio.wavfile import iter_blocks

        yield from iter_blocks(self._info, self.chunk_s)  # type: ignore[arg-type]

    def open(self, on_audio: OnAudio) -> Stream:
        if time.monotonic() < self._unplugged_until:
            raise DeviceUnavailable("fake device unplugged")
        if self._chunks is None:
            self._chunks = self._iter_chunks()
        self.opens += 1
        return _WavStream(self, on_audio)


class _WavStream:
    def __init__(self, opener: WavOpener, on_audio: OnAudio) -> None:
        self.o = opener
        self.on_audio = on_audio
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pacelight-fake-capture", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)

    def _run(self) -> None:
        o = self.o
        t_next = time.monotonic()
        silence = None
        while not self._stop.is_set():
            chunk = next(o._chunks, None) if o._chunks is not None else None
            if chunk is None:
                if o.after_eof == "stop":
                    o.finished.set()
                    return
                if silence is None:
                    silence = np.zeros((max(1, int(round(o.rate_hz * o.chunk_s))), 2), np.float32)
                chunk = silence
            dur = len(chunk) / (o.rate_hz * o.clock)
            if o._pending_unplugs and o._pos_s >= o._pending_unplugs[0]:
                o._pending_unplugs.pop(0)
                o._unplugged_until = time.monotonic() + o.faults.unplug_for_s
                log.info("fake device: unplugged at %.2f s for %.1f s", o._pos_s, o.faults.unplug_for_s)
                return  # the device is gone: no more callbacks on this stream (the chunk is lost)
            o._pos_s += dur
            if o._pending_xruns and o._pos_s >= o._pending_xruns[0]:
                o._pending_xruns.pop(0)
                self.on_audio(chunk[:0], time.monotonic(), True)  # the overflow flag; the chunk is lost
                continue
            if o.speed > 0:
                t_next += dur / o.speed
                delay = t_next - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    t_next = time.monotonic() if delay < -0.5 else t_next  # fell far behind: resync
            elif o.space is not None:
                waited = time.monotonic()
                while not self._stop.is_set() and o.space() < len(chunk) * 4:
                    time.sleep(0.0005)
                    if time.monotonic() - waited > 0.05:  # backpressure is not a dead device:
                        self.on_audio(chunk[:0], time.monotonic(), False)  # keep the stall watch fed
                        waited = time.monotonic()
            if self._stop.is_set():
                return
            self.on_audio(chunk, time.monotonic(), False)


# ---- supervisor ------------------------------------------------------------------------------------
class CaptureSupervisor:
    """Keeps the input device(s) open, feeding ``ring`` (stereo: agent, customer) from callbacks.

    One device: channels ``agent_channel`` and ``customer_channel`` are copied into the ring.
    Two devices: the first device's ``agent_channel`` goes into ``ring`` directly (it is the
    clock master); the second device's channel 0 goes into ``second_ring``, and the analysis
    thread aligns it with :class:`DriftCompensator` (:meth:`read_stereo`).
    """

    def __init__(self, opener: StreamOpener, ring: RingBuffer, *, agent_channel: int = 0,
                 customer_channel: int = 1, second: StreamOpener | None = None, stall_timeout_s: float = 1.0,
                 backoff_min_s: float = 0.1, backoff_max_s: float = 1.0, drift_max_ppm: float = 1000.0,
                 drift_time_constant_s: float = 20.0) -> None:
        self.opener, self.second = opener, second
        self.ring = ring
        self.agent_channel = agent_channel
        self.customer_channel = customer_channel if opener.channels > 1 else -1
        self.stall_timeout_s = stall_timeout_s
        self.backoff_min_s, self.backoff_max_s = backoff_min_s, backoff_max_s
        self.second_ring: RingBuffer | None = None
        self.drift: DriftCompensator | None = None
        if second is not None:
            if second.rate_hz != opener.rate_hz:
                raise PacelightError("both capture devices must run at the same nominal rate")
            self.second_ring = RingBuffer(ring.capacity, 1)
            # Target backlog of the second ring: 40 ms of callback jitter. The agent channel is
            # delayed by the same amount so the two channels stay aligned (echo gating needs it).
            self.drift = DriftCompensator(opener.rate_hz, int(0.04 * opener.rate_hz), drift_max_ppm,
                                          drift_time_constant_s)
            self._agent_delay = np.zeros(int(self.drift.target), np.float32)
        self._streams: list[Stream | None] = [None, None]
        self._last_cb = [0.0, 0.0]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reopens = 0
        self.device_xruns = 0  # overflows the device itself reported
        self.state = "starting"  # "open" | "lost" | "stopped"
        self.last_error: str | None = None
        self.lost_since: float | None = None
        self.last_outage_s: float | None = None  # last device loss → audio flowing again
        self._scratch = np.zeros((0, 2), np.float32)

    # callbacks: copy only
    def _on_first(self, data: np.ndarray, t: float, overflow: bool) -> None:
        self._last_cb[0] = time.monotonic()
        if overflow:
            self.device_xruns += 1
            self.ring.count_xrun()
        n = len(data)
        if not n:
            return
        if self.second is not None:
            self.ring.write(data[:, self.agent_channel : self.agent_channel + 1], t)
            return
        if self._scratch.shape[0] != n:
            self._scratch = np.zeros((n, 2), np.float32)
        buf = self._scratch
        buf[:, 0] = data[:, self.agent_channel]
        if self.customer_channel >= 0:
            buf[:, 1] = data[:, self.customer_channel]
        else:
            buf[:, 1] = 0.0
        self.ring.write(buf, t)

    def _on_second(self, data: np.ndarray, t: float, overflow: bool) -> None:
        self._last_cb[1] = time.monotonic()
        if overflow:
            self.device_xruns += 1
            self.second_ring.count_xrun()  # type: ignore[union-attr]
        if len(data):
            self.second_ring.write(data[:, :1], t)  # type: ignore[union-attr]

    # lifecycle
    def start(self) -> CaptureSupervisor:
        self._thread = threading.Thread(target=self._run, name="pacelight-capture-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._close_all()
        self.state = "stopped"

    def _close_all(self) -> None:
        for i, s in enumerate(self._streams):
            if s is not None:
                try:
                    s.close()
                except Exception:  # noqa: BLE001 - a dead device may fail to close
                    log.debug("closing stream %d failed", i, exc_info=True)
                self._streams[i] = None

    def _open_all(self) -> None:
        openers = [self.opener] + ([self.second] if self.second is not None else [])
        callbacks = [self._on_first, self._on_second]
        for i, op in enumerate(openers):
            self._last_cb[i] = time.monotonic()
            self._streams[i] = op.open(callbacks[i])

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self._open_all()
            except PacelightError as exc:
                self._close_all()
                self._mark_lost(str(exc))
                delay = min(self.backoff_max_s, self.backoff_min_s * 2 ** min(attempt, 16))
                attempt += 1
                self._stop.wait(delay)
                continue
            if self.state == "lost":
                self.reopens += 1
                self.last_outage_s = time.monotonic() - (self.lost_since or time.monotonic())
                log.warning("capture: device back after %.1f s", self.last_outage_s)
            self.state, self.lost_since, attempt = "open", None, 0
            if self.second is not None and self.drift is not None:  # realign the clocks after a (re)open
                self.ring.clear()
                self.second_ring.clear()  # type: ignore[union-attr]
                self.drift.primed = False
            while not self._stop.wait(min(0.1, self.stall_timeout_s / 4)):
                now = time.monotonic()
                n = 2 if self.second is not None else 1
                if any(now - self._last_cb[i] > self.stall_timeout_s for i in range(n)):
                    break
            if self._stop.is_set():
                return
            self._close_all()
            self._mark_lost(f"no audio from the input device for {self.stall_timeout_s:.1f} s (unplugged?)")

    def _mark_lost(self, reason: str) -> None:
        if self.state != "lost":
            log.warning("capture: %s; reopening", reason)
            self.lost_since = time.monotonic()
        self.state = "lost"
        self.last_error = reason

    # consumer side (analysis thread)
    def read(self) -> tuple[np.ndarray, float] | None:
        """One chunk (n, 2) with its capture time, or None when nothing is waiting."""
        got = self.ring.read_write()
        if got is None or self.second is None:
            return got
        agent, t = got
        n = len(agent)
        sr, drift = self.second_ring, self.drift
        if sr is None or drift is None:
            return got
        drift.update_ratio(sr.fill, n / self.opener.rate_hz)
        cust = sr.read(drift.needed(n))
        out = np.empty((n, 2), np.float32)
        delayed = np.concatenate([self._agent_delay, agent[:, 0]])
        out[:, 0] = delayed[:n]
        self._agent_delay = delayed[n:]
        out[:, 1] = drift.process(cust[:, 0], n)
        return out, t

    @property
    def backlog_frames(self) -> int:
        return self.ring.fill

    @property
    def xruns(self) -> int:
        return self.ring.xruns + (self.second_ring.xruns if self.second_ring is not None else 0)
