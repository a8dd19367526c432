"""Channel augmentation for 16 kHz float signals (numpy/scipy; no TensorFlow).

The real channel is a headset / telephone path: 300–3400 Hz band, 8 kHz μ-law, line noise, unknown
gain (sometimes clipping), and speakers whose rate and pitch differ from the corpora's actors.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, resample_poly, sosfilt


def _band_sos():
    return butter(6, [300.0, 3400.0], btype="bandpass", fs=8_000, output="sos")


def mu_law(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """8-bit μ-law encode + decode (G.711-like quantisation)."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((y + 1.0) / 2.0 * mu) / mu * 2.0 - 1.0
    return (np.sign(q) * ((1.0 + mu) ** np.abs(q) - 1.0) / mu).astype(np.float32)


def telephone(x: np.ndarray, ulaw: bool = True) -> np.ndarray:
    """16 kHz → 8 kHz, 300–3400 Hz band, optional μ-law, → 16 kHz (deterministic)."""
    y = resample_poly(np.asarray(x, np.float64), 1, 2)
    y = sosfilt(_band_sos(), y)
    if ulaw:
        y = mu_law(y)
    return resample_poly(y, 2, 1).astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator, pink: bool = False) -> np.ndarray:
    n = rng.standard_normal(len(x))
    if pink:
        spec = np.fft.rfft(n)
        spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1.0))
        n = np.fft.irfft(spec, n=len(x))
    sig_p = float(np.mean(np.asarray(x, np.float64) ** 2)) + 1e-12
    n *= np.sqrt(sig_p / (10.0 ** (snr_db / 10.0)) / (float(np.mean(n ** 2)) + 1e-12))
    return (x + n).astype(np.float32)


def gain(x: np.ndarray, db: float) -> np.ndarray:
    """Gain with hard clipping at full scale."""
    return np.clip(x * 10.0 ** (db / 20.0), -1.0, 1.0).astype(np.float32)


SPEED_RATIOS = ((10, 11), (11, 10), (20, 19), (19, 20), (13, 12), (12, 13))


def speed(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample-based speed+pitch change: up/down > 1 → slower and lower."""
    return resample_poly(np.asarray(x, np.float64), up, down).astype(np.float32)


def random_channel(x: np.ndarray, rng: np.random.Generator, kind: int) -> np.ndarray:
    """Augmented copy ``kind`` (0 = clean, 1 = telephone+μ-law, 2 = noise+gain, 3 = speed/pitch, 4 = all, 5 = telephone+μ-law only)."""
    if kind == 0:
        return np.asarray(x, np.float32)
    if kind == 5:  # deterministic evaluation channel: telephone band + μ-law only
        return telephone(x, ulaw=True)
    y = np.asarray(x, np.float32)
    if kind in (3, 4):
        up, down = SPEED_RATIOS[int(rng.integers(len(SPEED_RATIOS)))]
        y = speed(y, up, down)
    if kind == 1 or (kind == 4 and rng.random() < 0.6):
        y = telephone(y, ulaw=True)
    if kind in (2, 4) or (kind == 1 and rng.random() < 0.5):
        y = add_noise(y, float(rng.uniform(5.0, 30.0)), rng, pink=bool(rng.random() < 0.5))
    if kind in (2, 4):
        y = gain(y, float(rng.uniform(-20.0, 8.0)))
    return y
