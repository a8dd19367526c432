"""Edge runtime: ring buffer, drift, call detection, replay == analyze, xruns/unplug, overload.

The sound card is replaced only at the stream seam (:class:`pacelight.edge.capture.WavOpener`,
a fake device that plays audio in real-time-sized chunks, faster than real time here, and
injects xruns and unplugs); everything behind it is the production code.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _edge_helpers import RATE_HZ, longest_gap_s, make_session, tone_model_env, write_wav
from pacelight.edge.capture import DriftCompensator, FaultPlan, RingBuffer, WavOpener
from pacelight.edge.outbox import Outbox
from pacelight.edge.runtime import EdgeRuntime
from pacelight.edge.settings import EdgeSettings, load_settings, parse_settings
from pacelight.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def session():
    return make_session()


@pytest.fixture(autouse=True)
def _tone_model(monkeypatch):
    for k, v in tone_model_env().items():
        monkeypatch.setenv(k, v)


def _settings(tmp_path: Path, **calls) -> EdgeSettings:
    s = parse_settings({"device": {"id": "edge-test", "outbox_path": str(tmp_path / "outbox.sqlite")},
                        "health": {"status_path": str(tmp_path / "status.json"), "interval_s": 0.1},
                        "calls": calls or {"detect": "activity"}})
    return s


def _run(settings: EdgeSettings, opener, outbox, timeout_s: float = 120.0, **kw) -> tuple[EdgeRuntime, list]:
    got: list = []
    rt = EdgeRuntime(settings, outbox=outbox, opener=opener, sinks=[], on_summary=got.append, **kw)
    rt.start()
    assert rt.wait(timeout_s), "the runtime did not reach the end of the stream"
    rt.stop()
    return rt, got


# ---- pieces ---------------------------------------------------------------------------------------
def test_ring_buffer_keeps_order_and_counts_overflow_as_xrun():
    ring = RingBuffer(100, 2)
    a = np.arange(120, dtype=np.float32).reshape(60, 2)
    assert ring.write(a, 1.0)
    assert not ring.write(a, 2.0)  # does not fit whole: dropped, counted, never blocks
    assert ring.xruns == 1 and ring.dropped_frames == 60
    out, t = ring.read_write()
    assert t == 1.0 and np.array_equal(out, a)
    for k in range(3):  # wraps around the end of the buffer
        assert ring.write(a[:40] + k, 3.0 + k)
        out, t = ring.read_write()
        assert np.array_equal(out, a[:40] + k) and t == 3.0 + k
    assert ring.read_write() is None and ring.fill == 0


def test_drift_compensator_locks_onto_a_fast_second_clock():
    rate, ppm = 16_000, 400.0  # the second device runs 400 ppm fast
    drift = DriftCompensator(rate, target_fill_frames=640, max_ppm=1000, time_constant_s=5.0)
    ring = RingBuffer(rate * 4, 1)
    f0 = 440.0
    chunk, produced, fills, t_src = 320, 0, [], 0
    out_all = []
    for _ in range(3000):  # 60 s
        n_src = int(round((produced + chunk) * (1 + ppm * 1e-6))) - t_src
        src = np.sin(2 * np.pi * f0 * (t_src + np.arange(n_src)) / (rate * (1 + ppm * 1e-6))).astype(np.float32)
        ring.write(src[:, None], 0.0)
        t_src += n_src
        drift.update_ratio(ring.fill, chunk / rate)
        x = ring.read(drift.needed(chunk))
        out_all.append(drift.process(x[:, 0], chunk))
        produced += chunk
        fills.append(ring.fill)
    assert abs((drift.ratio - 1) * 1e6 - ppm) < 60, drift.ratio  # learned the clock ratio
    assert max(fills[-500:]) < 640 + 2 * chunk  # the backlog stays bounded (no drift-induced xruns)
    out = np.concatenate(out_all)[-rate:]  # last second: a clean 440 Hz tone on the master clock
    spec = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert abs(np.argmax(spec) - f0) <= 1


def test_settings_reject_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'rate'"):
        parse_settings({"capture": {"rate": 48000}})
    with pytest.raises(ConfigError, match="unknown table"):
        parse_settings({"captures": {}})
    with pytest.raises(ConfigError, match="end_silence_s"):
        parse_settings({"calls": {"end_silence_s": 0.1}})
    with pytest.raises(ConfigError, match="backend"):
        parse_settings({"capture": {"backend": "alsa"}})
    with pytest.raises(ConfigError, match="unknown cue settings"):
        parse_settings({"cues": {"overtalk_after": 2}})
    s = parse_settings({"cues": {"overtalk_detect_s": 1.2}, "pipeline": {"language": "ru"}})
    assert s.pipeline.cues.overtalk_detect_s == 1.2 and s.pipeline.language == "ru"
    example = load_settings(ROOT / "firmware" / "deploy" / "config.toml")  # the shipped example is valid
    assert example.capture.backend == "pyaudio" and example.calls.end_silence_s == 8.0


# ---- live path ------------------------------------------------------------------------------------
def test_replayed_call_summary_equals_analyze(tmp_path, session):
    from pacelight.analysis.runner import analyze_file

    wav = write_wav(tmp_path / "call.wav", session.audio[int(1.5 * RATE_HZ) : int(23 * RATE_HZ)])
    offline = analyze_file(wav).to_dict()
    s = _settings(tmp_path, detect="off")
    with Outbox(tmp_path / "outbox.sqlite") as box:
        rt, got = _run(s, WavOpener(wav, chunk_s=0.02, speed=0), box)
        assert len(got) == 1 and box.contains(got[0].call_id)
        queued = box.pending()[0].payload
    live = got[0].to_dict()
    assert got[0].to_json() == queued
    for k in ("call_id", "started_at", "device_id"):
        offline.pop(k), live.pop(k)
    assert live == offline
    if tone_model_env() or os.environ.get("PACELIGHT_TONE_MODEL"):
        assert live["model"]["tone"] != "none"  # the tone model ran on the live path too
    assert rt.capture.xruns == 0 and rt.tone_skips == 0


def test_multi_call_session_splits_into_the_simulated_calls(tmp_path, session):
    for truth in session.truths:
        assert longest_gap_s(truth) < 8.0  # sanity: no pause inside a call is a hang-up
    s = _settings(tmp_path, detect="activity", end_silence_s=8.0)
    with Outbox(tmp_path / "outbox.sqlite") as box:
        rt, got = _run(s, WavOpener(session.audio, rate_hz=RATE_HZ, chunk_s=0.02, speed=0), box)
        assert len(box) == 2
    assert len(got) == 2, [g.duration_s for g in got]
    for summary, (start, end), truth in zip(got, session.calls_s, session.truths, strict=True):
        assert not summary.partial
        # A call lasts from its first speech (minus the pre-roll) to the hang-up hangover.
        assert end - start - 2 <= summary.duration_s <= end - start + 8.0 + 2.5
        talk = truth["talk"]
        assert summary.talk.agent_s == pytest.approx(talk["agent_s"], abs=2.0)
        assert summary.talk.customer_s == pytest.approx(talk["customer_s"], abs=2.0)
    assert got[0].call_id != got[1].call_id
    assert rt.status()["calls_completed"] == 2


def test_survives_xruns_and_an_unplug(tmp_path, session):
    audio = session.audio[int(1.5 * RATE_HZ) : int(23 * RATE_HZ)]
    faults = FaultPlan(xruns_at_s=(3.0, 7.0, 11.0), unplug_at_s=(9.0,), unplug_for_s=1.0)
    opener = WavOpener(audio, rate_hz=RATE_HZ, chunk_s=0.02, speed=0, faults=faults)
    s = _settings(tmp_path, detect="off")
    s = replace(s, capture=replace(s.capture, stall_timeout_s=0.5, reopen_backoff_min_s=0.05,
                                   reopen_backoff_max_s=0.5))
    with Outbox(tmp_path / "outbox.sqlite") as box:
        rt, got = _run(s, opener, box)
    st = rt.status()
    # (a heavily loaded test machine may add a spurious stall → reopen; it loses no audio)
    assert st["xruns"] == 3 and st["capture_reopens"] >= 1 and opener.opens == st["capture_reopens"] + 1
    # Lost from the stall detection (0.5 s after the unplug) until audio flows again: the device is
    # away for 1 s; the reopen backoff is bounded (0.5 s here), so recovery is well inside 5 s.
    assert st["last_outage_s"] is not None and st["last_outage_s"] < 5.0
    assert rt.capture.state == "stopped" and st["capture"] == "stopped"
    assert len(got) == 1 and not got[0].partial
    # 3 lost 20 ms chunks + 1 chunk at the unplug: the rest of the call was analysed.
    assert got[0].duration_s == pytest.approx(len(audio) / RATE_HZ - 4 * 0.02, abs=0.021)
    assert got[0].talk.agent_s > 3.0 and got[0].talk.customer_s > 3.0


def test_overload_skips_tone_never_activity(tmp_path, session):
    from pacelight.analysis.runner import analyze_file

    audio = session.audio[int(1.5 * RATE_HZ) : int(23 * RATE_HZ)]
    wav = write_wav(tmp_path / "call.wav", audio)
    s = _settings(tmp_path, detect="off")
    with Outbox(tmp_path / "outbox.sqlite") as box:
        rt = EdgeRuntime(s, outbox=box, opener=WavOpener(wav, chunk_s=0.02, speed=0), sinks=[])
        rt._skip_at = rt._resume_at = -1.0  # simulate permanent overload: always "behind"
        rt.start()
        assert rt.wait(120)
        rt.stop()
        live = Outbox.__len__(box) and box.pending()[0].payload
    import json

    live = json.loads(live)
    offline = analyze_file(wav).to_dict()
    from pacelight.analysis.turns import TalkFrames
    from pacelight.frames import BLOCK_FRAMES

    # Every released block's tone inference skipped (tone sees frames TalkFrames.DELAY_FRAMES late,
    # and the last ones all at once at the end of the call).
    delay_blocks = TalkFrames.DELAY_FRAMES / BLOCK_FRAMES
    assert rt.tone_skips >= len(audio) / RATE_HZ / 0.05 - 1 - delay_blocks
    assert live["talk"] == offline["talk"] and live["overtalk"] == offline["overtalk"]  # VAD untouched
    assert live["tone"]["agent"]["mean_score"] is None  # no tone decisions under overload


def test_gpio_hook_signal_drives_calls(tmp_path, session):
    from pacelight.edge.calls import GpioHookSignal

    class FakePin:  # the GPIO seam (gpiozero.DigitalInputDevice), read once per 20 ms chunk
        def __init__(self, pin, pull_up, bounce_time):
            self.pin, self.reads = pin, 0

        @property
        def is_active(self):  # off hook from 3 s to 12 s and from 20 s to 30 s of audio
            t = self.reads * 0.02
            self.reads += 1
            return 3.0 <= t < 12.0 or 20.0 <= t < 30.0

        def close(self):
            pass

    audio = session.audio[: int(40 * RATE_HZ)]
    opener = WavOpener(audio, rate_hz=RATE_HZ, chunk_s=0.02, speed=0)
    s = _settings(tmp_path, detect="gpio")
    with Outbox(tmp_path / "outbox.sqlite") as box:
        _rt, got = _run(s, opener, box, hook_signal=GpioHookSignal(23, factory=FakePin))
    assert [round(g.duration_s, 2) for g in got] == [9.0, 10.0]


def test_host_config_overrides_cues_from_the_next_call(tmp_path, session):
    from pacelight.edge.device_config import parse_device_config

    s = _settings(tmp_path, detect="off")
    with Outbox(tmp_path / "outbox.sqlite") as box:
        rt = EdgeRuntime(s, outbox=box, opener=WavOpener(session.audio, rate_hz=RATE_HZ), sinks=[])
        rt.apply_host_config(parse_device_config({"cues": {"overtalk_after_s": 1.2, "monologue_after_s": 90,
                                                           "led_brightness": 0.5}}))
        cues = rt._pending.pipeline.cues
        assert (cues.overtalk_detect_s, cues.monologue_on_s) == (1.2, 90.0)
        assert rt._pending.outputs.serial_brightness == 128
        rt.apply_host_config(parse_device_config({"cues": {"overtalk_after_s": 5}}))  # the engine refuses > 1.5 s
        assert "host config ignored" in rt.status()["last_error"]
        assert rt._pending.pipeline.cues.overtalk_detect_s == 1.2  # the previous host config stays
        # A SIGHUP re-reads the file; the host's overrides stay on top of it.
        rt.request_reload(replace(s, calls=replace(s.calls, end_silence_s=9.0)))
        assert rt._pending.pipeline.cues.overtalk_detect_s == 1.2 and rt._pending.calls.end_silence_s == 9.0
        rt._apply_pending()
        assert rt.settings.pipeline.cues.monologue_on_s == 90.0 and rt.config_generation == 2
