"""Real recorded clips (EmoDB, RAVDESS, silero multilingual) used as simulated utterances.

The data folder is ``$PACELIGHT_DATA_DIR`` or ``<repo>/../shared/data``. Audio is never copied
into the repository; clips are read with soundfile (16 kHz mono FLAC). EmoDB syllable counts
come from the manifest; RAVDESS and silero clips have unknown syllables (``None``).
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pacelight.errors import InputError
from pacelight.frames import SAMPLE_RATE_HZ

SILERO_FILES = {"en": "misc/silero_vad_en.flac", "de": "misc/silero_vad_de.flac",
                "es": "misc/silero_vad_es.flac", "ru": "misc/silero_vad_ru.flac"}


@dataclass(frozen=True)
class Clip:
    path: str  # relative to the data dir
    corpus: str
    language: str
    arousal: str
    emotion: str
    syllables: int | None
    duration_s: float


def data_dir() -> Path:
    env = os.environ.get("PACELIGHT_DATA_DIR")
    if env:
        return Path(env)
    # firmware/pacelight/sim/clips.py → <repo> = parents[3]; data in <repo>/../shared/data
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


@functools.lru_cache(maxsize=4)
def _manifest(root: str) -> tuple[Clip, ...]:
    path = Path(root) / "manifest.csv"
    if not path.exists():
        raise InputError(f"clip manifest not found: {path} (set PACELIGHT_DATA_DIR)")
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            syl = row.get("syllables", "").strip()
            out.append(Clip(row["path"], row["corpus"], row["language"], row["arousal"], row["emotion"],
                            int(syl) if syl else None, float(row["duration_s"])))
    return tuple(sorted(out, key=lambda c: c.path))


def select_clips(corpora: tuple[str, ...] = ("emodb", "ravdess"), arousal: tuple[str, ...] | None = None,
                 root: Path | None = None) -> tuple[Clip, ...]:
    """Manifest clips filtered by corpus and arousal label (sorted by path: deterministic)."""
    clips = _manifest(str(root or data_dir()))
    sel = tuple(c for c in clips if c.corpus in corpora and (arousal is None or c.arousal in arousal))
    if not sel:
        raise InputError(f"no clips match corpora={corpora} arousal={arousal}")
    return sel


@functools.lru_cache(maxsize=2048)
def _read(path: str) -> np.ndarray:
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    x = audio.mean(axis=1).astype(np.float32)
    if rate != SAMPLE_RATE_HZ:
        from scipy.signal import resample_poly

        g = np.gcd(rate, SAMPLE_RATE_HZ)
        x = resample_poly(x, SAMPLE_RATE_HZ // g, rate // g).astype(np.float32)
    x.setflags(write=False)
    return x


def load_clip(rel_path: str, root: Path | None = None) -> np.ndarray:
    """A clip as float32 mono 16 kHz (read-only array, cached)."""
    p = (root or data_dir()) / rel_path
    if not p.exists():
        raise InputError(f"clip not found: {p}")
    return _read(str(p))


def silero_chunk(lang: str, rng: np.random.Generator, dur_s: float, root: Path | None = None) -> tuple[str, np.ndarray]:
    """A ``dur_s`` excerpt of the one-minute silero clip in ``lang`` (or English)."""
    rel = SILERO_FILES.get(lang, SILERO_FILES["en"])
    x = load_clip(rel, root)
    n = int(dur_s * SAMPLE_RATE_HZ)
    start = int(rng.integers(0, max(1, x.size - n)))
    return f"{rel}@{start / SAMPLE_RATE_HZ:.2f}", np.array(x[start:start + n])
