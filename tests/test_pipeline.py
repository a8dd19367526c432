"""Streaming pipeline properties: chunk-size invariance, resampler exactness, echo gating."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pacelight.analysis.pipeline import CallIdentity
from pacelight.analysis.resample import StreamingResampler
from pacelight.analysis.runner import build_analyzer
from scipy.signal import resample_poly

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "misc" / "pyannote_sample.flac"
IDENT = CallIdentity("dev-1", "dev-1-test", datetime(2026, 11, 23, tzinfo=UTC))


@pytest.fixture(scope="module")
def call() -> np.ndarray:
    x, _ = sf.read(SAMPLE, dtype="float32")
    x = x[int(16000 * 6.5) :]
    n = len(x) // 2
    c = np.zeros((2 * n, 2), dtype=np.float32)
    c[:n, 0] = x[:n]
    c[n:, 1] = x[n : 2 * n] * 0.5
    # Echo of the customer into the agent mic (−20 dB, 12 ms) and sidetone (−25 dB, 5 ms).
    c[192:, 0] += 0.1 * c[:-192, 1]
    c[80:, 1] += 0.056 * c[:-80, 0]
    return c


def run(call: np.ndarray, rate: int, chunk: int) -> dict:
    a = build_analyzer(rate, identity=IDENT, with_tone=False)
    for i in range(0, len(call), chunk):
        a.feed(call[i : i + chunk])
    return a.finish(with_segments=True).to_dict()


def test_chunk_size_invariance(call):
    one_frame = run(call, 16000, 160)
    one_second = run(call, 16000, 16000)
    odd = run(call, 16000, 777)
    assert one_frame == one_second == odd
    assert one_frame["talk"]["agent_s"] > 5


def test_chunk_size_invariance_at_44k(call):
    x = resample_poly(call, 441, 160, axis=0).astype(np.float32)
    assert run(x, 44100, 441) == run(x, 44100, 44100)


def test_echo_and_sidetone_are_not_talk(call):
    d = run(call, 16000, 16000)
    half = len(call) / 2 / 16000
    # Agent talks only in the first half, customer only in the second; the leaks must not count.
    assert all(e <= half + 0.3 for _, e in d["segments"]["agent"])
    assert all(s >= half - 0.3 for s, _ in d["segments"]["customer"])
    assert d["talk"]["overlap_s"] == 0


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 32000, 44100, 48000])
def test_streaming_resampler_matches_resample_poly(rate):
    rng = np.random.default_rng(rate)
    x = rng.standard_normal((rate, 2)).astype(np.float32) * 0.1
    r = StreamingResampler(rate, 16000, 2)
    parts, i = [], 0
    while i < len(x):
        k = int(rng.integers(1, 2000))
        parts.append(r.process(x[i : i + k]))
        i += k
    y = np.concatenate(parts + [r.flush()])
    g = np.gcd(rate, 16000)
    ref = resample_poly(x.astype(np.float64), 16000 // g, rate // g, axis=0)
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() < 1e-5


def test_pace_detector_is_chosen_by_config(call, tmp_path):
    """[pipeline.pace] reaches the analyzer's estimators: the peak picker counts differently from
    the default events detector on the same call, and both give a plausible per-call pace."""
    from pacelight.analysis.pipeline import PipelineSettings
    from pacelight.config import load_pipeline_settings

    assert PipelineSettings().pace.detector == "events"
    cfg = tmp_path / "pace.toml"
    cfg.write_text('[pipeline.pace]\ndetector = "peaks"\n')
    settings = load_pipeline_settings(cfg)
    assert settings.pace.detector == "peaks"
    paces = {}
    for name, s in (("events", None), ("peaks", settings)):
        a = build_analyzer(16000, s, identity=IDENT, with_tone=False)
        a.feed(call)
        paces[name] = a.finish().to_dict()["pace"]["agent_syl_s"]
    assert all(2.0 < p < 9.0 for p in paces.values()), paces
    assert paces["peaks"] != paces["events"]
