"""Channel effects for simulated calls: telephone band + G.711 μ-law, echo/crosstalk, sidetone,
stationary noise (pink/brown + mains hum), office babble with reverb, level setting. All numpy
vectorised; every random choice comes from the caller's ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np

from pacelight.frames import FRAME_SAMPLES, SAMPLE_RATE_HZ

MU = 255.0


def mulaw_roundtrip(x: np.ndarray) -> np.ndarray:
    """G.711 μ-law encode (8 bit) and decode, numpy only."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    q = np.round((y + 1.0) * 127.5) / 127.5 - 1.0  # 256 levels
    return (np.sign(q) * np.expm1(np.abs(q) * np.log1p(MU)) / MU).astype(np.float32)


def bandpass(x: np.ndarray, lo_hz: float, hi_hz: float, order: int = 4,
             rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    sos = butter(order, [lo_hz, hi_hz], btype="bandpass", fs=rate_hz, output="sos")
    return sosfilt(sos.astype(np.float32), x.astype(np.float32)).astype(np.float32)


def lowpass(x: np.ndarray, hz: float, order: int = 2) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    sos = butter(order, hz, btype="lowpass", fs=SAMPLE_RATE_HZ, output="sos")
    return sosfilt(sos.astype(np.float32), x.astype(np.float32)).astype(np.float32)


def telephone(x: np.ndarray) -> np.ndarray:
    """300–3400 Hz band, 8 kHz G.711 μ-law round trip, back to 16 kHz."""
    from scipy.signal import resample_poly

    y8 = bandpass(resample_poly(x, 1, 2), 300.0, 3400.0, rate_hz=SAMPLE_RATE_HZ // 2)
    return resample_poly(mulaw_roundtrip(y8), 2, 1)[: x.size].astype(np.float32)


def delay(x: np.ndarray, delay_s: float) -> np.ndarray:
    d = int(round(delay_s * SAMPLE_RATE_HZ))
    out = np.zeros_like(x)
    if d < x.size:
        out[d:] = x[: x.size - d]
    return out


def colored_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS pink (1/f) or brown (1/f²) noise, via FFT shaping."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE_HZ)
    f[0] = f[1] if n > 1 else 1.0
    spec /= np.sqrt(f) if kind == "pink" else f
    y = np.fft.irfft(spec, n)
    y = y - y.mean()
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def hum(n: int, mains_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS mains hum with a few harmonics."""
    # Exactly periodic in 1/mains_hz at 16 kHz for 50/60 Hz: compute one second, tile it.
    t = np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    one = np.zeros(SAMPLE_RATE_HZ)
    for k, a in ((1, 1.0), (2, 0.5), (3, 0.35), (5, 0.15)):
        one += a * np.sin(2 * np.pi * mains_hz * k * t + rng.uniform(0, 2 * np.pi))
    y = np.tile(one, n // SAMPLE_RATE_HZ + 1)[:n]
    return (y / np.sqrt(np.mean(y**2))).astype(np.float32)


def reverb(x: np.ndarray, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with an exponentially decaying noise impulse response (room)."""
    from scipy.signal import fftconvolve

    n = int(rt60_s * SAMPLE_RATE_HZ)
    t = np.arange(n) / SAMPLE_RATE_HZ
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)
    ir[0] = 1.0
    ir /= np.sqrt(np.sum(ir**2))
    return fftconvolve(x, ir)[: x.size].astype(np.float32)


def frame_energy(x: np.ndarray) -> np.ndarray:
    """Mean-square energy per 10 ms frame (last partial frame dropped)."""
    n = x.size // FRAME_SAMPLES
    f = x[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES).astype(np.float64)
    return np.mean(f * f, axis=1)


def active_level_db(x: np.ndarray, active: np.ndarray | None = None) -> float:
    """Active speech level (dBFS RMS) over the frames marked active (or frames within 30 dB of peak)."""
    e = frame_energy(x)
    if active is None:
        active = e > e.max() * 1e-3 if e.size else e.astype(bool)
    active = active[: e.size]
    if not active.any():
        return -120.0
    return float(10 * np.log10(np.mean(e[active]) + 1e-20))


def db(x: float) -> float:
    return float(10 ** (x / 20.0))
