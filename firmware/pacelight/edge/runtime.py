"""The appliance runtime: live capture → call detection → streaming pipeline → LEDs and outbox.

Threads (all named, each with a stop event):

* the sound card's callback thread (PortAudio, or the fake capture's thread): copies into the
  ring buffer, nothing else (:mod:`pacelight.edge.capture`);
* ``pacelight-capture-supervisor``: reopens a lost device with bounded backoff;
* ``pacelight-analysis``: reads the ring, detects calls (:mod:`pacelight.edge.calls`), runs one
  :class:`~pacelight.analysis.pipeline.CallAnalyzer` per call — built by
  :func:`pacelight.analysis.runner.build_analyzer`, exactly as ``pacelight analyze`` builds it —
  forwards its :class:`~pacelight.events.CueChange` events to the LED sinks as they are decided,
  and puts each call's summary into the outbox (the publisher thread sends it);
* ``pacelight-health``: the status JSON file and the systemd watchdog.

Overload: when the analysis thread lags the sound card by ``runtime.tone_skip_backlog_s`` of
audio, tone inference is skipped (its frames are treated as unanalysed; counted in
``tone_skips``) until the backlog falls under ``tone_resume_backlog_s``. Activity (VAD) never
is; if even that cannot keep up, the ring overflows and the lost chunks are counted as xruns.

Stop (SIGTERM): the current call is flushed as a summary marked ``partial: true``.
Reload (SIGHUP): :meth:`EdgeRuntime.request_reload` — applied when the next call starts.
"""

from __future__ import annotations

import logging
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np

from pacelight.edge.calls import CallDetector, HookSignal, make_detector
from pacelight.edge.capture import CaptureSupervisor, PyAudioOpener, RingBuffer, StreamOpener, WavOpener
from pacelight.edge.health import StatusFile, sd_notify, watchdog_interval_s
from pacelight.edge.settings import EdgeSettings, OutputsSection
from pacelight.errors import PacelightError
from pacelight.events import CueChange

log = logging.getLogger(__name__)

CueListener = Callable[[CueChange, "float | None"], None]  # (change, capture→emit latency s or None)


def make_opener(settings: EdgeSettings, second: bool = False) -> StreamOpener:
    c = settings.capture
    if c.backend == "wav":
        return WavOpener(c.wav_path, chunk_s=c.chunk_s, speed=c.wav_speed, after_eof=c.wav_after_eof)
    chunk = max(1, int(round(c.rate_hz * c.chunk_s)))
    if second:
        return PyAudioOpener(c.second_device, c.rate_hz, 1, chunk)
    return PyAudioOpener(c.device, c.rate_hz, c.channels, chunk)


def make_sinks(outputs: OutputsSection, terminal_stream=None) -> list:
    """LED outputs for ``[outputs]`` (each a :class:`pacelight.cues.outputs.LedSink`)."""
    from pacelight.cues.outputs import GpioLed, GpioLedSettings, SerialLed, SerialLedSettings, TerminalLed

    sinks: list = []
    if outputs.serial_port:
        b = outputs.serial_brightness if outputs.serial_brightness >= 0 else None
        sinks.append(SerialLed(outputs.serial_port, SerialLedSettings(brightness=b)).start())
    if outputs.gpio_led:
        sinks.append(GpioLed(GpioLedSettings(outputs.gpio_red_pin, outputs.gpio_green_pin, outputs.gpio_blue_pin,
                                             outputs.gpio_brightness)))
    if outputs.terminal or terminal_stream is not None:
        sinks.append(TerminalLed(terminal_stream if terminal_stream is not None else sys.stderr))
    return sinks


class _Call:
    def __init__(self, analyzer, start_frame: int, started_at: datetime) -> None:
        self.analyzer = analyzer
        self.start_frame = start_frame
        self.started_at = started_at
        self.call_id = analyzer.identity.call_id


class EdgeRuntime:
    """One appliance: capture, analysis thread, call detection, cue outputs, outbox, health."""

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        outbox=None,
        opener: StreamOpener | None = None,
        second_opener: StreamOpener | None = None,
        sinks: list | None = None,
        publisher=None,
        hook_signal: HookSignal | None = None,
        cue_listener: CueListener | None = None,
        on_summary: Callable[[object], None] | None = None,
    ) -> None:
        from pacelight.edge.outbox import Outbox

        self.settings = settings
        self.device_id = settings.device.device_id
        c = settings.capture
        self.outbox = outbox if outbox is not None else Outbox(settings.device.outbox_file(),
                                                               settings.device.outbox_max_items)
        self._own_outbox = outbox is None
        self.opener = opener or make_opener(settings)
        max_speed = getattr(self.opener, "speed", None) == 0  # a file played as fast as possible
        self.rate_hz = self.opener.rate_hz
        two = second_opener is not None or c.two_devices
        self.ring = RingBuffer(int(c.ring_s * self.rate_hz), 1 if two else 2)
        if isinstance(self.opener, WavOpener) and self.opener.speed == 0 and self.opener.space is None:
            self.opener.space = lambda: self.ring.capacity - self.ring.fill  # backpressure, not xruns
        if second_opener is None and c.two_devices:
            second_opener = make_opener(settings, second=True)
        self.capture = CaptureSupervisor(
            self.opener, self.ring, agent_channel=c.agent_channel, customer_channel=c.customer_channel,
            second=second_opener, stall_timeout_s=c.stall_timeout_s, backoff_min_s=c.reopen_backoff_min_s,
            backoff_max_s=c.reopen_backoff_max_s, drift_max_ppm=c.drift_max_ppm,
            drift_time_constant_s=c.drift_time_constant_s)
        self.sinks = sinks if sinks is not None else make_sinks(settings.outputs)
        self._own_sinks = sinks is None
        self.publisher = publisher
        self.hook_signal = hook_signal
        self.cue_listener = cue_listener
        self.on_summary = on_summary
        # Overload policy (disabled when replaying as fast as possible: there is no real time then).
        r = settings.runtime
        self._skip_at = np.inf if max_speed else r.tone_skip_backlog_s
        self._resume_at = np.inf if max_speed else r.tone_resume_backlog_s
        self.tone_skipping = False
        self.tone_skips = 0  # 50 ms blocks whose tone inference was skipped
        # State
        self._detector: CallDetector | None = make_detector(settings.calls, self.rate_hz,
                                                            self._activity_settings(settings), hook_signal)
        self._call: _Call | None = None
        self._frames = 0  # input frames processed
        self._preroll: deque[tuple[int, np.ndarray]] = deque()
        self._preroll_frames = 0
        self._chunk_t: float | None = None  # capture time of the chunk being analysed
        self._pending: EdgeSettings | None = None
        self.config_generation = 1  # configs applied so far (1 = the one at start)
        self._file_settings = settings  # the local config file; host overrides go on top of it
        self._host_config = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.done = threading.Event()  # the analysis thread has finished (stop or end of stream)
        self.failed = False  # the analysis thread died of an error (the service exits non-zero)
        self._thread: threading.Thread | None = None
        self._health_thread: threading.Thread | None = None
        self._heartbeat = time.monotonic()
        self.state = "starting"
        self.last_error: str | None = None
        self.calls_completed = 0
        self.calls_dropped = 0
        self.summaries: list[str] = []  # call_ids queued by this runtime
        self.cue_latencies_s: list[float] = []
        # capture → analysed latency of the most recent chunks (health, benchmark)
        self.chunk_latencies_s = np.zeros(1024, np.float64)
        self.chunks_analysed = 0
        self.status_file = StatusFile(settings.health.status_path) if settings.health.status_path else None
        self._status_lock = threading.Lock()

    @staticmethod
    def _activity_settings(settings: EdgeSettings):
        return getattr(settings.pipeline_settings(), "activity", None)

    # ---- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> EdgeRuntime:
        if self.settings.calls.detect == "off":
            self._start_call(0)
        self.capture.start()
        self._thread = threading.Thread(target=self._run, name="pacelight-analysis", daemon=True)
        self._thread.start()
        if self.publisher is not None:
            self.publisher.start()
        self.state = "idle" if self._call is None else "in_call"
        sd_notify("READY=1")
        self._health_thread = threading.Thread(target=self._health_loop, name="pacelight-health", daemon=True)
        self._health_thread.start()
        log.info("edge runtime started: device %s, %d Hz, call detection %s", self.device_id, self.rate_hz,
                 self.settings.calls.detect)
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop capture, flush the current call as a partial summary, stop the outputs."""
        sd_notify("STOPPING=1")
        self._stop.set()
        self.capture.stop()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.state = "stopped"
        self._write_status()
        if self._health_thread is not None:
            self._health_thread.join(5.0)
        if self.publisher is not None:
            self._drain_outbox(self.settings.runtime.stop_drain_s)
            self.publisher.stop()
        if self._own_sinks:
            self._close_sinks(self.sinks)
        if self._own_outbox:
            self.outbox.close()

    def _drain_outbox(self, timeout_s: float) -> None:
        """Give a connected publisher a moment to deliver (and get acks for) what is queued."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.publisher.connected and len(self.outbox):
            time.sleep(0.05)

    def wait(self, timeout_s: float | None = None) -> bool:
        return self.done.wait(timeout_s)

    def apply_host_config(self, cfg) -> None:
        """The host's retained config (:class:`pacelight.edge.device_config.DeviceConfig`, from the
        publisher's ``on_config``): cue overrides on top of the local file, from the next call on.
        An override the cue engine rejects is logged and the whole host config ignored."""
        try:
            base = self._pending or self.settings
            new = _with_host_config(self._file_settings, cfg)
        except PacelightError as exc:
            log.warning("host config ignored: %s", exc)
            self.last_error = f"host config ignored: {exc}"
            return
        self._host_config = cfg
        if new != base:
            self.request_reload(self._file_settings, _keep_file=True)

    def request_reload(self, settings: EdgeSettings, _keep_file: bool = False) -> None:
        """New settings from SIGHUP: applied when the next call starts (capture needs a restart)."""
        if not _keep_file:
            self._file_settings = settings
        if self._host_config is not None:
            try:
                settings = _with_host_config(settings, self._host_config)
            except PacelightError as exc:
                log.warning("host config no longer applies to the new file config: %s", exc)
        if settings.capture != self.settings.capture or settings.device != self.settings.device \
                or settings.mqtt != self.settings.mqtt:
            log.warning("config reload: [capture], [device] and [mqtt] changes need a service restart")
        with self._lock:
            self._pending = settings
        log.info("config reloaded; applies to the next call")

    @staticmethod
    def _close_sinks(sinks) -> None:
        for s in sinks:
            try:
                s.close()
            except Exception:  # noqa: BLE001
                log.exception("closing LED sink %r failed", s)

    # ---- analysis thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        finished = getattr(self.opener, "finished", None)
        try:
            while not self._stop.is_set():
                self._heartbeat = time.monotonic()
                got = self.capture.read()
                if got is None:
                    if finished is not None and finished.is_set() and self.ring.fill == 0:
                        log.info("end of the input stream")
                        self._end_call(partial=False)
                        break
                    self.ring.data_ready.wait(0.1)
                    continue
                chunk, t_cap = got
                self._process(chunk, t_cap)
                self.chunk_latencies_s[self.chunks_analysed % len(self.chunk_latencies_s)] = time.monotonic() - t_cap
                self.chunks_analysed += 1
            else:
                # Stopping: analyse what is already captured, then flush the call as partial.
                while (got := self.capture.read()) is not None:
                    self._process(*got)
                self._end_call(partial=True)
        except Exception as exc:  # noqa: BLE001 - record, keep the summary, let systemd restart us
            self.failed = True
            self.last_error = f"analysis failed: {exc}"
            log.exception("analysis thread failed")
            try:
                self._end_call(partial=True)
            except Exception:  # noqa: BLE001
                log.exception("flushing the call after a failure failed")
        finally:
            self.done.set()

    def _process(self, chunk: np.ndarray, t_cap: float) -> None:
        n = len(chunk)
        pos = self._frames
        self._frames += n
        backlog_s = self.capture.backlog_frames / self.rate_hz
        if not self.tone_skipping and backlog_s > self._skip_at:
            self.tone_skipping = True
            log.warning("analysis %.2f s behind real time: skipping tone inference", backlog_s)
        elif self.tone_skipping and backlog_s <= self._resume_at:
            self.tone_skipping = False
            log.info("analysis caught up: tone inference resumed")
        if self._call is None and self._detector is not None:
            self._remember(pos, chunk)
        edges = self._detector.update(chunk) if self._detector is not None else []
        fed = False
        for edge in edges:
            if edge.kind == "start" and self._call is None:
                self._start_call(edge.at_frame)
                for p, c in self._preroll:  # the pre-roll ends with this chunk
                    if p + len(c) > edge.at_frame:
                        self._feed(c[max(0, edge.at_frame - p) :], t_cap if p == pos else None)
                self._preroll.clear()
                self._preroll_frames = 0
                fed = True
            elif edge.kind == "end" and self._call is not None:
                cut = min(n, max(0, edge.at_frame - pos))
                if not fed:
                    self._feed(chunk[:cut], t_cap)
                self._end_call(partial=False)
                self._remember(pos + cut, chunk[cut:])
                fed = True
        if self._call is not None and not fed:
            self._feed(chunk, t_cap)
        if self._call is not None and \
                (self._frames - self._call.start_frame) / self.rate_hz >= self.settings.calls.max_call_s:
            log.warning("call reached calls.max_call_s: closing it and starting a new one")
            self._end_call(partial=False)
            self._start_call(self._frames)

    def _remember(self, pos: int, chunk: np.ndarray) -> None:
        """Keep recent audio between calls: the pre-roll of the next call."""
        if not len(chunk):
            return
        self._preroll.append((pos, chunk))
        self._preroll_frames += len(chunk)
        keep = int((self.settings.calls.start_window_s + self.settings.calls.preroll_s + 1.0) * self.rate_hz)
        while self._preroll and self._preroll_frames - len(self._preroll[0][1]) >= keep:
            self._preroll_frames -= len(self._preroll.popleft()[1])

    def _feed(self, audio: np.ndarray, t_cap: float | None) -> None:
        if self._call is None or not len(audio):
            return
        self._chunk_t = t_cap
        self._call.analyzer.feed(audio)
        self._chunk_t = None

    def _on_cue(self, change: CueChange) -> None:
        t = self._chunk_t
        latency = None if t is None else time.monotonic() - t
        from pacelight.cues.outputs import fan_out

        fan_out([change], self.sinks)
        if latency is not None:
            self.cue_latencies_s.append(latency)
            del self.cue_latencies_s[:-1000]
        if self.cue_listener is not None:
            self.cue_listener(change, latency)

    def _apply_pending(self) -> None:
        with self._lock:
            new, self._pending = self._pending, None
        if new is None:
            return
        old = self.settings
        if new.outputs != old.outputs and self._own_sinks:
            self._close_sinks(self.sinks)
            self.sinks = make_sinks(new.outputs)
        if new.calls != old.calls or new.pipeline != old.pipeline:
            self._detector = make_detector(new.calls, self.rate_hz, self._activity_settings(new), self.hook_signal)
        r = new.runtime
        if self._skip_at != np.inf:
            self._skip_at, self._resume_at = r.tone_skip_backlog_s, r.tone_resume_backlog_s
        self.settings = new
        self.config_generation += 1
        log.info("new config applied (generation %d)", self.config_generation)

    def _tone_gate(self) -> bool:
        """Asked by the pipeline once per block and party: skip tone inference now? (counted)"""
        if self.tone_skipping:
            self.tone_skips += 1
            return True
        return False

    def _start_call(self, at_frame: int) -> None:
        from pacelight.analysis.pipeline import CallIdentity, make_call_id
        from pacelight.analysis.runner import build_analyzer

        self._apply_pending()
        back_s = (self._frames - at_frame) / self.rate_hz
        started = (datetime.now(UTC) - timedelta(seconds=back_s)).replace(microsecond=0)
        call_id = make_call_id(self.device_id, started, secrets.token_hex(4))
        analyzer = build_analyzer(self.rate_hz, self.settings.pipeline_settings(),
                                  CallIdentity(self.device_id, call_id, started), on_cue=self._on_cue,
                                  tone_gate=self._tone_gate)
        self._call = _Call(analyzer, at_frame, started)
        self.state = "in_call"
        log.info("call %s started", call_id)
        self._write_status()

    def _end_call(self, partial: bool) -> None:
        call, self._call = self._call, None
        if call is None:
            return
        self.state = "idle" if not self._stop.is_set() else "stopping"
        summary = call.analyzer.finish(partial=partial)
        if not partial and summary.duration_s < self.settings.calls.min_call_s:
            self.calls_dropped += 1
            log.info("call %s dropped: %.1f s is shorter than calls.min_call_s", call.call_id, summary.duration_s)
            return
        try:
            self.outbox.put(summary)
        except Exception as exc:  # noqa: BLE001 - disk full, corrupt DB: keep running, report it
            self.last_error = f"outbox: {exc}"
            log.exception("could not queue summary %s", call.call_id)
            return
        self.summaries.append(summary.call_id)
        self.calls_completed += 1
        log.info("call %s ended (%.1f s%s): summary queued", summary.call_id, summary.duration_s,
                 ", partial" if partial else "")
        if self.publisher is not None:
            self.publisher.notify()
        if self.on_summary is not None:
            self.on_summary(summary)
        self._write_status()

    # ---- health ------------------------------------------------------------------------------------
    def status(self) -> dict:
        call = self._call
        try:
            depth = len(self.outbox)
        except Exception:  # noqa: BLE001 - closed or broken outbox
            depth = None
        cap = self.capture
        state = self.state
        if state in ("idle", "in_call") and cap.state == "lost":
            state = "capture_lost"
        lat = sorted(self.cue_latencies_s[-200:])
        k = min(self.chunks_analysed, len(self.chunk_latencies_s))
        chunk_p99 = float(np.percentile(self.chunk_latencies_s[:k], 99)) if k else None
        return {
            "state": state,
            "device_id": self.device_id,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "current_call": None if call is None else {
                "call_id": call.call_id,
                "started_at": call.started_at.isoformat().replace("+00:00", "Z"),
                "elapsed_s": round((self._frames - call.start_frame) / self.rate_hz, 1),
            },
            "capture": cap.state,
            "xruns": cap.xruns,
            "capture_reopens": cap.reopens,
            "last_outage_s": None if cap.last_outage_s is None else round(cap.last_outage_s, 2),
            "backlog_s": round(cap.backlog_frames / self.rate_hz, 3),
            "tone_skips": self.tone_skips,
            "outbox_depth": depth,
            "calls_completed": self.calls_completed,
            "config_generation": self.config_generation,
            "config_reload_pending": self._pending is not None,
            "mqtt_connected": None if self.publisher is None else bool(self.publisher.connected),
            "cue_latency_p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "analysis_latency_p99_ms": None if chunk_p99 is None else round(1000 * chunk_p99, 1),
            "last_error": self.last_error or cap.last_error,
        }

    def _write_status(self) -> None:
        if self.status_file is not None:
            with self._status_lock:  # snapshot and write together: the last writer holds the latest state
                self.status_file.write(self.status())

    def _health_loop(self) -> None:
        wd = watchdog_interval_s() if self.settings.runtime.watchdog else None
        interval = self.settings.health.interval_s if wd is None else min(wd, self.settings.health.interval_s)
        while not self.done.is_set():
            self._write_status()
            if wd is not None and time.monotonic() - self._heartbeat < 10.0:
                sd_notify("WATCHDOG=1")  # only while the analysis thread is alive and looping
            if self.done.wait(interval):
                break


def _with_host_config(settings: EdgeSettings, cfg) -> EdgeSettings:
    """Overlay the host's cue overrides (DeviceConfig.cues) onto ``settings`` (raises ConfigError)."""
    from dataclasses import replace

    from pacelight.cues.engine import CUE_KINDS, CueSettings

    p = settings.pipeline_settings()
    cues = p.cues if p.cues is not None else CueSettings()
    outputs = settings.outputs
    o = getattr(cfg, "cues", None)
    changes: dict = {}
    if o is not None:
        if o.enabled is not None:
            changes["enabled_kinds"] = tuple(CUE_KINDS) if o.enabled else ()
        if o.overtalk_after_s is not None:
            changes["overtalk_detect_s"] = float(o.overtalk_after_s)
        if o.monologue_after_s is not None:
            changes["monologue_on_s"] = float(o.monologue_after_s)
        if o.pace_window_s is not None:
            changes["pace_sustain_s"] = float(o.pace_window_s)
        if o.led_brightness is not None:
            outputs = replace(outputs, serial_brightness=int(round(255 * o.led_brightness)),
                              gpio_brightness=float(o.led_brightness))
    unused = [k for k in ("pace_target", "agent_talk_ratio_max") if getattr(cfg, k, None) is not None]
    if unused:
        log.info("host config: %s not used by the device's cues yet", ", ".join(unused))
    cues = replace(cues, **changes)  # CueSettings validates (ConfigError)
    return replace(settings, pipeline=replace(p, cues=cues), outputs=outputs)
