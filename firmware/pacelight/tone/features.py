"""Log-mel features for the tone (arousal) model — the ONE implementation used by training and runtime.

One feature frame per 10 ms pipeline frame: frame ``i`` is the 25 ms (400-sample) Hann window that
ends at the end of pipeline frame ``i`` (the first frames see zeros before the start of the signal),
so a frame's row depends only on its own 400 samples: :func:`logmel_frames` computes any subset of
frames, and the streaming tracker (which computes frames lazily, when a window is due) and
:func:`logmel` over the whole signal give identical rows whatever the block sizes.

Model input for one window (:func:`normalize_window`) is the log-mel patch of ``WINDOW_FRAMES``
frames, floored 80 dB below its loudest bin and normalised by the mean/std of its louder frames
(a per-window gain/channel normalisation: the model sees spectral shape and dynamics, not level).
Pure numpy; no TensorFlow here.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from pacelight.frames import FRAME_SAMPLES, SAMPLE_RATE_HZ

N_MELS = 40
WIN_SAMPLES = 400  # 25 ms at 16 kHz
HOP_SAMPLES = FRAME_SAMPLES  # 10 ms: one feature frame per pipeline frame
N_FFT = 512
FMIN_HZ = 60.0
FMAX_HZ = 7_600.0
POWER_FLOOR = 1e-10
WINDOW_FRAMES = 200  # 2.0 s model input
HOP_FRAMES = 100  # 1.0 s between windows
DYNAMIC_RANGE_DB = 80.0
ACTIVE_RANGE_DB = 35.0  # frames within this of the loudest frame define the normalisation stats
HISTORY_SAMPLES = WIN_SAMPLES - HOP_SAMPLES  # 240 samples of a frame's window before the frame


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """(N_FFT//2+1, N_MELS) triangular HTK-style mel filterbank (float32, slaney-normalised)."""
    freqs = np.linspace(0.0, SAMPLE_RATE_HZ / 2.0, N_FFT // 2 + 1)
    pts = _mel_to_hz(np.linspace(_hz_to_mel(FMIN_HZ), _hz_to_mel(FMAX_HZ), N_MELS + 2))
    lo, ce, hi = pts[:-2, None], pts[1:-1, None], pts[2:, None]
    up = (freqs[None, :] - lo) / (ce - lo)
    down = (hi - freqs[None, :]) / (hi - ce)
    fb = np.maximum(0.0, np.minimum(up, down)) * (2.0 / (hi - lo))
    out = fb.T.astype(np.float32)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    w = np.hanning(WIN_SAMPLES + 1)[:-1].astype(np.float32)
    w.flags.writeable = False
    return w


def _frames_logmel(frames: np.ndarray) -> np.ndarray:
    """(T, WIN_SAMPLES) float32 analysis frames → (T, N_MELS) log-mel in dB (float32).

    float32 throughout, FFT included (scipy's single-precision real FFT, one worker, in place on a
    zero-padded buffer: ~6× cheaper than numpy's float64 FFT; each row is transformed on its own, so a
    row does not depend on the batch). Only the FFT bins the filterbank uses enter the mel product.
    """
    buf = np.zeros((frames.shape[0], N_FFT), np.float32)
    np.multiply(frames, _window(), out=buf[:, :WIN_SAMPLES])
    spec = scipy.fft.rfft(buf, axis=1, workers=1, overwrite_x=True)  # (T, N_FFT//2+1) complex64
    lo, hi = _mel_bins()
    parts = spec[:, lo:hi].view(np.float32)  # re, im interleaved (a view of the complex64 spectrum)
    np.square(parts, out=parts)
    power = np.add(parts[:, 0::2], parts[:, 1::2])
    mel = power @ mel_filterbank()[lo:hi]
    np.maximum(mel, np.float32(POWER_FLOOR), out=mel)
    np.log10(mel, out=mel)
    mel *= np.float32(10.0)
    return mel


@lru_cache(maxsize=1)
def _mel_bins() -> tuple[int, int]:
    """[lo, hi) FFT bins where the mel filterbank is non-zero (60–7600 Hz)."""
    used = np.flatnonzero(mel_filterbank().any(axis=1))
    return int(used[0]), int(used[-1]) + 1


def _check_signal(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError("signal must be 1-D")
    return x


def logmel_frames(padded: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
    """Log-mel rows of frames of a signal given with the ``HISTORY_SAMPLES`` before its first frame.

    ``padded`` = ``HISTORY_SAMPLES`` samples (zeros at the start of a signal) followed by whole 10 ms
    frames; frame ``f`` (0-based) is analysed over ``padded[160 f : 160 f + 400]``, the 25 ms ending at
    the end of the frame. ``frames`` selects frame indices (ascending or not; default: all frames).
    Returns ``(len(frames), N_MELS)`` dB. NaN/inf samples count as 0/±1. This is the single feature
    computation: :func:`logmel` (training, evaluation, the CLI) and the streaming tracker, which keeps
    a constant-size ring of raw samples and computes frames only when a window is due, both call it.
    """
    padded = np.ascontiguousarray(padded, dtype=np.float32)
    if padded.ndim != 1:
        raise ValueError("signal must be 1-D")
    n = max((len(padded) - HISTORY_SAMPLES) // HOP_SAMPLES, 0)
    # (n, WIN_SAMPLES) overlapping read-only view: frame f = padded[HOP f : HOP f + WIN]
    view = np.ndarray((n, WIN_SAMPLES), np.float32, buffer=padded if n else np.zeros(WIN_SAMPLES, np.float32),
                      strides=(HOP_SAMPLES * padded.itemsize, padded.itemsize))
    view.flags.writeable = False
    sel = view if frames is None else view[np.asarray(frames, dtype=np.intp)]
    if sel.shape[0] == 0:
        return np.zeros((0, N_MELS), np.float32)
    with np.errstate(invalid="ignore", over="ignore"):  # bad samples are handled just below
        out = _frames_logmel(sel)
    # A non-finite sample always gives a non-finite row (inf·0 or inf−inf is NaN, NaN propagates), so
    # checking the (T, 40) output is enough and 10× cheaper than checking the (T, 400) input. Rare.
    if not np.isfinite(out).all() and not np.isfinite(sel).all():
        out = _frames_logmel(np.nan_to_num(sel, nan=0.0, posinf=1.0, neginf=-1.0))
    return out


def logmel(signal: np.ndarray) -> np.ndarray:
    """Whole 16 kHz signal (float, ±1) → (len // 160, N_MELS) log-mel dB, one row per 10 ms frame.

    A trailing partial frame is ignored (as the frame clock does).
    """
    x = _check_signal(signal)
    n = len(x) // HOP_SAMPLES
    return logmel_frames(np.concatenate([np.zeros(HISTORY_SAMPLES, np.float32), x[: n * HOP_SAMPLES]]))


def normalize_window(lm: np.ndarray, n_frames: int = WINDOW_FRAMES) -> np.ndarray:
    """(T, N_MELS) log-mel dB → (n_frames, N_MELS) normalised model input (float32).

    Floors the patch ``DYNAMIC_RANGE_DB`` below its loudest bin, standardises with the mean/std of
    its active frames (frame energy within ``ACTIVE_RANGE_DB`` of the loudest), and centres a
    shorter patch in the window, padding with the floor value. Longer input keeps its last frames.
    """
    lm = np.asarray(lm, dtype=np.float32)
    if lm.ndim != 2 or lm.shape[1] != N_MELS:
        raise ValueError(f"log-mel must have shape (T, {N_MELS})")
    if lm.shape[0] > n_frames:
        lm = lm[-n_frames:]
    if lm.shape[0] == 0:
        return np.zeros((n_frames, N_MELS), np.float32)
    top = float(lm.max())
    x = np.maximum(lm, np.float32(top - DYNAMIC_RANGE_DB))
    energy = np.add.reduce(x, axis=1)  # frame energy × N_MELS (sums: fewer passes than means)
    active = energy >= energy.max() - np.float32(ACTIVE_RANGE_DB * N_MELS)
    ref = x if active.all() else x[active]
    mu = float(np.add.reduce(ref, axis=None)) / ref.size
    dev = (ref - np.float32(mu)).ravel()
    sd = max(float(np.sqrt(np.dot(dev, dev) / ref.size)), 1.0)
    z = np.subtract(x, np.float32(mu), out=x)  # x is this function's own array: standardise it in place
    np.divide(z, np.float32(sd), out=z)
    if z.shape[0] == n_frames:
        return z
    floor = ((top - DYNAMIC_RANGE_DB) - mu) / sd
    out = np.full((n_frames, N_MELS), floor, np.float32)
    start = (n_frames - z.shape[0]) // 2
    out[start:start + z.shape[0]] = z
    return out


def clip_windows(lm: np.ndarray, n_frames: int = WINDOW_FRAMES, hop_frames: int = HOP_FRAMES
                 ) -> list[tuple[int, int]]:
    """Window (start, end) frame ranges over a clip's log-mel: n_frames long, hop_frames apart.

    A clip shorter than a window gives one (0, T) window; the last window is aligned to the end so
    the tail is covered.
    """
    t = lm.shape[0]
    if t <= n_frames:
        return [(0, t)] if t > 0 else []
    starts = list(range(0, t - n_frames + 1, hop_frames))
    if starts[-1] + n_frames < t and (t - n_frames) - starts[-1] >= hop_frames // 2:
        starts.append(t - n_frames)
    return [(s, s + n_frames) for s in starts]


TRIM_RANGE_DB = 40.0  # active: within this of the loudest frame …
TRIM_NOISE_DB = 12.0  # … and this far above the 10th-percentile (noise floor) frame
TRIM_KEEP_FRAMES = 15  # keep 150 ms around the active span (as the training corpora were trimmed)


def trim_bounds(lm: np.ndarray) -> tuple[int, int]:
    """(start, end) frames of a clip without its leading/trailing silence (the training corpora's rule).

    A frame is active if its mean log-mel energy exceeds max(loudest − 40 dB, 10th percentile + 12 dB);
    150 ms are kept on each side. A clip with no active frame keeps all its frames.
    """
    n = lm.shape[0]
    if n == 0:
        return 0, 0
    e = lm.mean(axis=1)
    thr = max(float(e.max()) - TRIM_RANGE_DB, float(np.percentile(e, 10)) + TRIM_NOISE_DB)
    idx = np.flatnonzero(e > thr)
    if idx.size == 0:
        return 0, n
    return max(0, int(idx[0]) - TRIM_KEEP_FRAMES), min(n, int(idx[-1]) + 1 + TRIM_KEEP_FRAMES)


def clip_model_inputs(signal: np.ndarray, trim: bool = True) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One speaker's 16 kHz clip → (n_windows, 200, 40) model inputs and their (start, end) frames.

    Silence at the ends is trimmed first (``trim``); window frames are relative to the untrimmed clip.
    """
    lm = logmel(signal)
    offset, end = trim_bounds(lm) if trim else (0, lm.shape[0])
    lm = lm[offset:end]
    wins = clip_windows(lm)
    if not wins:
        return np.zeros((0, WINDOW_FRAMES, N_MELS), np.float32), []
    x = np.stack([normalize_window(lm[a:b]) for a, b in wins])
    return x, [(a + offset, b + offset) for a, b in wins]
