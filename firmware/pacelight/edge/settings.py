"""The appliance's device configuration (``/etc/pacelight/config.toml``), validated.

One TOML file, one table per concern; every table is a frozen dataclass with units in the
names, unknown keys and tables are rejected (:func:`pacelight.config._apply`), and values are
range-checked. ``[pipeline]`` is the analysis pipeline's own settings (the same table
``pacelight analyze --config`` reads) and ``[cues]`` the cue engine's thresholds.

Example: ``firmware/deploy/config.toml``. Reloaded on SIGHUP by ``pacelight edge run``; a reload
applies to the next call (capture settings need a restart).
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from pacelight.config import _apply, read_toml
from pacelight.errors import ConfigError

CAPTURE_BACKENDS = ("pyaudio", "wav")
CALL_DETECT_MODES = ("activity", "off", "gpio")
AFTER_EOF = ("stop", "silence")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@dataclass(frozen=True)
class DeviceSection:
    id: str = ""  # "" → the host name
    data_dir: str = "/var/lib/pacelight"
    outbox_path: str = ""  # "" → <data_dir>/outbox.sqlite
    outbox_max_items: int = 10_000

    def __post_init__(self) -> None:
        _check(self.outbox_max_items >= 1, "device.outbox_max_items must be >= 1")

    @property
    def device_id(self) -> str:
        return self.id or socket.gethostname().split(".")[0] or "pacelight"

    def outbox_file(self) -> Path:
        return Path(self.outbox_path) if self.outbox_path else Path(self.data_dir) / "outbox.sqlite"


@dataclass(frozen=True)
class CaptureSection:
    backend: str = "pyaudio"  # "pyaudio" (sound card) | "wav" (file played as a fake sound card: tests, bench)
    device: str = ""  # input device: name substring or index; "" → the default input
    second_device: str = ""  # two-device mode: the customer (receive path) device; "" → one stereo device
    rate_hz: int = 48_000
    channels: int = 2  # channels opened on `device` (1 in two-device mode is typical)
    agent_channel: int = 0
    customer_channel: int = 1  # on `device`; ignored in two-device mode (the second device's channel 0)
    chunk_s: float = 0.05  # callback size = one analysis block (fewer wake-ups; latency bound 50 ms)
    ring_s: float = 4.0  # ring buffer between the callback and the analysis thread
    stall_timeout_s: float = 1.0  # no callback for this long → the device is gone: reopen
    reopen_backoff_min_s: float = 0.1
    reopen_backoff_max_s: float = 1.0  # bounded so a replugged device is back within 5 s
    drift_max_ppm: float = 1000.0  # two-device mode: largest clock-rate correction
    drift_time_constant_s: float = 20.0
    wav_path: str = ""  # backend "wav": the file to play
    wav_speed: float = 1.0  # backend "wav": 1 = real time, 0 = as fast as possible
    wav_after_eof: str = "stop"  # backend "wav": "stop" ends the stream, "silence" keeps it open

    def __post_init__(self) -> None:
        _check(self.backend in CAPTURE_BACKENDS, f"capture.backend must be one of {CAPTURE_BACKENDS}")
        _check(8_000 <= self.rate_hz <= 48_000, "capture.rate_hz must be within 8000..48000")
        _check(1 <= self.channels <= 8, "capture.channels must be within 1..8")
        for name in ("agent_channel", "customer_channel"):
            _check(0 <= getattr(self, name) < self.channels or (name == "customer_channel" and self.channels == 1),
                   f"capture.{name} must be a channel of the device (0..{self.channels - 1})")
        _check(0.005 <= self.chunk_s <= 0.2, "capture.chunk_s must be within 0.005..0.2")
        _check(self.ring_s >= 10 * self.chunk_s and self.ring_s <= 60, "capture.ring_s must be >= 10 chunks, <= 60 s")
        _check(0.1 <= self.stall_timeout_s <= 10, "capture.stall_timeout_s must be within 0.1..10")
        _check(0 < self.reopen_backoff_min_s <= self.reopen_backoff_max_s <= 4.0,
               "capture: need 0 < reopen_backoff_min_s <= reopen_backoff_max_s <= 4 s")
        _check(0 <= self.drift_max_ppm <= 20_000, "capture.drift_max_ppm must be within 0..20000")
        _check(self.drift_time_constant_s > 0, "capture.drift_time_constant_s must be > 0")
        _check(self.wav_speed >= 0 and math.isfinite(self.wav_speed), "capture.wav_speed must be >= 0")
        _check(self.wav_after_eof in AFTER_EOF, f"capture.wav_after_eof must be one of {AFTER_EOF}")
        _check(self.backend != "wav" or bool(self.wav_path), "capture.backend 'wav' needs capture.wav_path")

    @property
    def two_devices(self) -> bool:
        return bool(self.second_device)


@dataclass(frozen=True)
class CallsSection:
    detect: str = "activity"  # "activity" (speech with hangover) | "off" (the whole stream is one call) | "gpio"
    start_speech_s: float = 1.0  # speech on either channel within start_window_s that starts a call
    start_window_s: float = 3.0
    end_silence_s: float = 8.0  # both channels silent this long → the call ended
    preroll_s: float = 2.0  # audio before the start decision that belongs to the call
    max_call_s: float = 4 * 3600.0  # a call this long is closed and a new one started
    min_call_s: float = 2.0  # shorter "calls" (a cough, a door) are dropped
    gpio_pin: int = 23  # detect = "gpio": hook/HID line (BCM numbering)
    gpio_active_low: bool = True
    gpio_debounce_s: float = 0.05

    def __post_init__(self) -> None:
        _check(self.detect in CALL_DETECT_MODES, f"calls.detect must be one of {CALL_DETECT_MODES}")
        _check(0.1 <= self.start_speech_s <= self.start_window_s <= 30, "calls: need 0.1 <= start_speech_s <= start_window_s <= 30")
        _check(1.0 <= self.end_silence_s <= 600, "calls.end_silence_s must be within 1..600")
        _check(0 <= self.preroll_s <= 10, "calls.preroll_s must be within 0..10")
        _check(60 <= self.max_call_s <= 24 * 3600, "calls.max_call_s must be within 60..86400")
        _check(0 <= self.min_call_s <= 60, "calls.min_call_s must be within 0..60")
        _check(0 <= self.gpio_pin <= 27, "calls.gpio_pin must be a BCM pin 0..27")
        _check(0 <= self.gpio_debounce_s <= 1, "calls.gpio_debounce_s must be within 0..1")


@dataclass(frozen=True)
class OutputsSection:
    serial_port: str = ""  # LED controller (e.g. /dev/serial/by-id/usb-MicroPython_...); "" → none
    serial_brightness: int = -1  # 0..255; -1 → the controller's own setting
    gpio_led: bool = False  # RGB LED on the Pi's GPIO (gpiozero)
    gpio_red_pin: int = 17
    gpio_green_pin: int = 27
    gpio_blue_pin: int = 22
    gpio_brightness: float = 0.4
    terminal: bool = False  # one status line on stderr

    def __post_init__(self) -> None:
        _check(-1 <= self.serial_brightness <= 255, "outputs.serial_brightness must be -1 or 0..255")
        _check(0.0 <= self.gpio_brightness <= 1.0, "outputs.gpio_brightness must be within 0..1")


@dataclass(frozen=True)
class MqttSection:
    broker: str = ""  # mqtt[s]://HOST:PORT; "" → summaries stay in the outbox
    username: str = ""  # "" → the device id
    password_file: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True)
class HealthSection:
    status_path: str = "/run/pacelight/status.json"  # "" → no status file
    interval_s: float = 2.0

    def __post_init__(self) -> None:
        _check(0.1 <= self.interval_s <= 60, "health.interval_s must be within 0.1..60")


@dataclass(frozen=True)
class RuntimeSection:
    # Overload policy: when the analysis thread falls behind by this much audio, tone inference is
    # skipped (counted) until the backlog is back under tone_resume_backlog_s. VAD is never skipped.
    tone_skip_backlog_s: float = 0.3
    tone_resume_backlog_s: float = 0.1
    watchdog: bool = True  # sd_notify WATCHDOG=1 when systemd asks for it
    stop_drain_s: float = 3.0  # on stop, wait this long for the publisher to deliver queued summaries

    def __post_init__(self) -> None:
        _check(0 <= self.tone_resume_backlog_s <= self.tone_skip_backlog_s,
               "runtime: need 0 <= tone_resume_backlog_s <= tone_skip_backlog_s")
        _check(0 <= self.stop_drain_s <= 20, "runtime.stop_drain_s must be within 0..20")


@dataclass(frozen=True)
class EdgeSettings:
    device: DeviceSection = field(default_factory=DeviceSection)
    capture: CaptureSection = field(default_factory=CaptureSection)
    calls: CallsSection = field(default_factory=CallsSection)
    outputs: OutputsSection = field(default_factory=OutputsSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    health: HealthSection = field(default_factory=HealthSection)
    runtime: RuntimeSection = field(default_factory=RuntimeSection)
    pipeline: object | None = None  # PipelineSettings (built lazily: keeps this module light)

    def pipeline_settings(self):
        from pacelight.analysis.pipeline import PipelineSettings

        return self.pipeline if self.pipeline is not None else PipelineSettings()


_SECTIONS = ("device", "capture", "calls", "outputs", "mqtt", "health", "runtime")


def parse_settings(data: dict, where: str = "config") -> EdgeSettings:
    """Validate a parsed TOML document into :class:`EdgeSettings` (raises ConfigError)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table")
    known = set(_SECTIONS) | {"pipeline", "cues"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    settings = EdgeSettings()
    changes = {}
    for name in _SECTIONS:
        if name in data:
            if not isinstance(data[name], dict):
                raise ConfigError(f"{where}: [{name}] must be a table")
            changes[name] = _apply(getattr(settings, name), data[name], name)
    if "pipeline" in data or "cues" in data:
        changes["pipeline"] = _pipeline(data, where)
    return replace(settings, **changes)


def _pipeline(data: dict, where: str):
    from pacelight.analysis.pipeline import PipelineSettings

    p = PipelineSettings()
    section = data.get("pipeline", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [pipeline] must be a table")
    if "cues" in section:
        raise ConfigError(f"{where}: cue settings go in the [cues] table")
    p = _apply(p, section, "pipeline")
    if "cues" in data:
        from pacelight.cues.engine import CueSettings

        if not isinstance(data["cues"], dict):
            raise ConfigError(f"{where}: [cues] must be a table")
        p = replace(p, cues=CueSettings.from_mapping(data["cues"]))
    return p


def load_settings(path: str | Path | None) -> EdgeSettings:
    """Read and validate the device config; ``None`` → the defaults."""
    if path is None:
        return EdgeSettings()
    return parse_settings(read_toml(path), str(path))
