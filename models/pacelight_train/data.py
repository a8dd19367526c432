"""Data preparation: manifest → (augmented) log-mel windows, cached as .npz (numpy/scipy only)."""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pacelight.tone.features import clip_windows, logmel, normalize_window

from . import augment

log = logging.getLogger(__name__)

DATA_DIR = Path(os.environ.get("PACELIGHT_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
LABELS = ("low", "neutral", "high")
LABEL_INDEX = {k: i for i, k in enumerate(LABELS)}


@dataclass(frozen=True)
class Clip:
    path: str
    corpus: str
    speaker: str
    sex: str
    split: str
    label: int


def load_manifest(data_dir: Path = DATA_DIR) -> list[Clip]:
    """Arousal clips (``excluded`` rows skipped), keeping the manifest's speaker-independent split."""
    out = []
    with open(data_dir / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["arousal"] not in LABEL_INDEX:
                continue
            out.append(Clip(row["path"], row["corpus"], row["speaker"], row["sex"], row["split"],
                            LABEL_INDEX[row["arousal"]]))
    return out


def read_audio(path: Path) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != 16_000:
        raise ValueError(f"{path}: expected 16 kHz, got {sr}")
    return x[:, 0]


def clip_inputs(signal: np.ndarray) -> np.ndarray:
    """A clip's model inputs: (n_windows, 200, 40) float32 (at least one window unless empty)."""
    lm = logmel(signal)
    wins = clip_windows(lm)
    if not wins:
        return np.zeros((0,) + normalize_window(lm[:0]).shape, np.float32)
    return np.stack([normalize_window(lm[a:b]) for a, b in wins])


CACHE_VERSION = 3  # part of the feature cache key: bump when features.py or augment.py change their output
# (3: float32 FFT in features._frames_logmel)


def build_arrays(clips: list[Clip], kinds: tuple[int, ...], seed: int, cache_dir: Path,
                 desc: str = "features") -> dict[str, np.ndarray]:
    """Windows for every clip × augmentation kind. Returns X (N,200,40), y, clip index, kind."""
    key = hashlib.sha256(repr((sorted(c.path for c in clips), kinds, seed, CACHE_VERSION)).encode()).hexdigest()[:16]
    cache = cache_dir / f"{desc}-{key}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    xs, ys, idx, kk = [], [], [], []
    for i, c in enumerate(tqdm(clips, desc=desc, unit="clip")):
        sig = read_audio(DATA_DIR / c.path)
        for k in kinds:
            w = clip_inputs(augment.random_channel(sig, rng, k))
            xs.append(w)
            ys += [c.label] * len(w)
            idx += [i] * len(w)
            kk += [k] * len(w)
    arrays = {"X": np.concatenate(xs).astype(np.float16), "y": np.asarray(ys, np.int64),
              "clip": np.asarray(idx, np.int64), "kind": np.asarray(kk, np.int64)}
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, cache)
    return arrays
