"""Capture seams: the PyAudio opener against a fake PortAudio module, and two-device capture with
clock drift through the whole runtime (two fake cards, each on its own thread and clock)."""

from __future__ import annotations

import sys
import threading
import time
import types

import numpy as np
import pytest
from _edge_helpers import RATE_HZ, make_session
from pacelight.edge.capture import (
    CaptureSupervisor,
    DeviceUnavailable,
    PyAudioOpener,
    RingBuffer,
    WavOpener,
)
from pacelight.edge.outbox import Outbox
from pacelight.edge.runtime import EdgeRuntime
from pacelight.edge.settings import parse_settings


def _fake_pyaudio(frames: np.ndarray, overflow_at: set[int]) -> types.ModuleType:
    """A stand-in for the `pyaudio` module: one USB card that delivers ``frames`` (int16) by callback."""
    mod = types.ModuleType("pyaudio")
    mod.paInt16, mod.paContinue, mod.paInputOverflow = 8, 0, 2
    mod.opened = []

    class Stream:
        def __init__(self, callback, frames_per_buffer, channels):
            self.cb, self.n, self.ch = callback, frames_per_buffer, channels
            self.stop_ev = threading.Event()
            self.t = threading.Thread(target=self.run, daemon=True)
            self.t.start()

        def run(self):
            for i, k in enumerate(range(0, len(frames), self.n)):
                if self.stop_ev.is_set():
                    return
                block = frames[k : k + self.n]
                self.cb(block.tobytes(), len(block), {}, mod.paInputOverflow if i in overflow_at else 0)

        def stop_stream(self):
            self.stop_ev.set()
            self.t.join()

        def close(self):
            pass

    class PyAudio:
        def get_device_count(self):
            return 2

        def get_device_info_by_index(self, i):
            return [{"name": "bcm2835 Headphones", "maxInputChannels": 0},
                    {"name": "USB Audio CODEC: Audio (hw:1,0)", "maxInputChannels": 2}][i]

        def open(self, **kw):
            mod.opened.append(kw)
            return Stream(kw["stream_callback"], kw["frames_per_buffer"], kw["channels"])

        def terminate(self):
            pass

    mod.PyAudio = PyAudio
    return mod


def test_pyaudio_opener_finds_the_card_converts_and_counts_overflows(monkeypatch):
    pcm = (np.arange(4800 * 2, dtype=np.int64) % 2000 - 1000).astype(np.int16).reshape(-1, 2)
    fake = _fake_pyaudio(pcm, overflow_at={3})
    monkeypatch.setitem(sys.modules, "pyaudio", fake)
    with pytest.raises(DeviceUnavailable, match="no input device matching"):
        PyAudioOpener("Scarlett", 48_000, 2, 480).open(lambda *a: None)
    ring = RingBuffer(48_000, 2)
    sup = CaptureSupervisor(PyAudioOpener("usb audio", 48_000, 2, 480), ring, agent_channel=1, customer_channel=0)
    sup.start()
    deadline = time.monotonic() + 5
    while ring.fill < len(pcm) and time.monotonic() < deadline:
        time.sleep(0.01)
    sup.stop()
    assert fake.opened[0]["input_device_index"] == 1 and fake.opened[0]["rate"] == 48_000
    out = ring.read(len(pcm))
    assert np.allclose(out[:, 0], pcm[:, 1] / 32768.0) and np.allclose(out[:, 1], pcm[:, 0] / 32768.0)
    assert sup.xruns == 1 and sup.device_xruns == 1  # the device's overflow flag is an xrun


def test_two_devices_with_clock_drift_give_the_one_device_result(tmp_path):
    from pacelight.analysis.runner import build_analyzer

    # Clean channels (no echo/sidetone effects): this checks clocks and alignment, not echo gating.
    sess = make_session(seeds=(3,), gaps_s=(1.0, 1.0), effects=False)
    stereo = sess.audio[: 14 * RATE_HZ]
    ppm = 500.0  # the receive-path card's clock runs 500 ppm fast
    n2 = int(round(len(stereo) * (1 + ppm * 1e-6)))
    cust = np.interp(np.arange(n2) / (1 + ppm * 1e-6), np.arange(len(stereo)), stereo[:, 1]).astype(np.float32)
    agent_dev = WavOpener(stereo[:, 0], rate_hz=RATE_HZ, chunk_s=0.02, speed=2.0)
    cust_dev = WavOpener(cust, rate_hz=RATE_HZ, chunk_s=0.02, speed=2.0, clock_error_ppm=ppm)
    s = parse_settings({"device": {"id": "edge-test"}, "calls": {"detect": "off"},
                        "capture": {"drift_time_constant_s": 2.0},
                        "health": {"status_path": ""}})
    got: list = []
    with Outbox(tmp_path / "outbox.sqlite") as box:
        rt = EdgeRuntime(s, outbox=box, opener=agent_dev, second_opener=cust_dev, sinks=[], on_summary=got.append)
        rt.start()
        assert rt.wait(60)
        rt.stop()
    ref = build_analyzer(RATE_HZ, with_tone=False)
    ref.feed(stereo)
    one = ref.finish()
    two = got[0]
    assert rt.capture.xruns == 0
    assert rt.capture.second_ring.fill < RATE_HZ // 2  # the faster card's backlog stays bounded
    # Two free-running cards start a few ms apart (here ×2 in audio time): small differences at
    # turn edges are expected; a broken path (a silent or misaligned channel) is not.
    assert one.talk.agent_s > 1.5 and one.talk.customer_s > 1.5
    assert two.talk.agent_s == pytest.approx(one.talk.agent_s, abs=1.0)
    assert two.talk.customer_s == pytest.approx(one.talk.customer_s, abs=1.0)
