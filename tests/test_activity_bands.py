"""Per-band gating pieces of analysis/activity.py: band levels and the vectorised histograms."""

import numpy as np
from pacelight.analysis.activity import ActivitySettings, BandLevels, EchoGatedActivity
from pacelight.analysis.levels import DecayingHistogram, DecayingHistograms
from pacelight.frames import FRAME_SAMPLES, SAMPLE_RATE_HZ


def test_band_levels_put_a_tone_in_its_band():
    bands = BandLevels(ActivitySettings().band_edges_hz)
    t = np.arange(4 * FRAME_SAMPLES) / SAMPLE_RATE_HZ
    x = (0.1 * np.sin(2 * np.pi * 1000.0 * t)).reshape(4, FRAME_SAMPLES).astype(np.float32)
    p = bands(x)
    assert p.shape == (4, 5)
    assert np.all(np.argmax(p, axis=1) == 2)  # 800–1600 Hz
    # total band power ≈ frame mean power (0.005 for a 0.1 sine)
    assert np.allclose(p.sum(axis=1), 0.005, rtol=0.2)


def test_vectorised_histograms_match_the_scalar_one():
    rng = np.random.default_rng(1)
    multi = DecayingHistograms(3, -100.0, 0.0, 0.5, 8.0)
    single = [DecayingHistogram(-100.0, 0.0, 0.5, 8.0) for _ in range(3)]
    for _ in range(20):
        v = rng.uniform(-80, -10, size=(7, 3))
        multi.add(v, 10)
        for k, h in enumerate(single):
            h.add(v[:, k], 10)
    got = multi.percentile(0.3)
    assert np.allclose(got, [h.percentile(0.3) for h in single])


def test_band_gate_keeps_own_voice_over_a_band_limited_echo():
    """Channel 0 carries a low-passed copy of channel 1 (echo) plus, in the second half, its own
    broadband signal: only the second half may count as channel 0's talk."""
    rng = np.random.default_rng(2)
    n = 600  # 6 s
    far = rng.standard_normal((n, FRAME_SAMPLES)).astype(np.float32) * 0.1
    spec = np.fft.rfft(far, axis=1)
    spec[:, 30:] = 0  # echo keeps only < 3 kHz
    echo = np.fft.irfft(spec, FRAME_SAMPLES, axis=1).astype(np.float32) * 0.1
    own = np.zeros_like(far)
    own[n // 2 :] = rng.standard_normal((n - n // 2, FRAME_SAMPLES)).astype(np.float32) * 0.05
    noise = rng.standard_normal((n, 2, FRAME_SAMPLES)).astype(np.float32) * 1e-4
    frames = np.stack([echo + own, far], axis=1) + noise
    act = EchoGatedActivity(ActivitySettings(spectral=True))
    excess = []
    for i in range(0, n, 5):
        act.process(frames[i : i + 5])
        excess.append(act.channels[0].last_excess)
    x = np.concatenate(excess)
    assert np.median(x[n // 2 + 100 :]) > np.median(x[200 : n // 2]) + 10.0
