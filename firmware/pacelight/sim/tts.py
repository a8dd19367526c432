"""espeak-ng rendering for the simulator and the pace benchmark, with an on-disk cache.

``render_tts(text, voice, speed_wpm, pitch=None)`` returns float32 mono audio at the frame
clock's 16 kHz. espeak-ng writes 22.05 kHz 16-bit WAV on stdout; it is resampled once with a
polyphase filter (320/441) and quantised to 16 bit. Renders are cached as 16-bit FLAC under
``$PACELIGHT_CACHE_DIR/tts`` (default ``~/.cache/pacelight/tts``), keyed by the text, voice,
speed, pitch and espeak-ng version, written atomically (temp file + rename); a fresh render is
returned exactly as it would be read back, so cached and fresh renders are identical.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from pacelight.errors import PacelightError
from pacelight.frames import SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

ESPEAK = "espeak-ng"
ESPEAK_RATE_HZ = 22_050
MIN_SPEED_WPM = 80
MAX_SPEED_WPM = 450
_RETRIES = 3
_CACHE_FORMAT = 2  # bump when the stored representation changes


class TTSError(PacelightError):
    """espeak-ng is missing or failed."""


def cache_dir() -> Path:
    """Where renders are cached: ``$PACELIGHT_CACHE_DIR/tts`` or ``~/.cache/pacelight/tts``."""
    base = os.environ.get("PACELIGHT_CACHE_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "pacelight"
    return root / "tts"


@functools.lru_cache(maxsize=1)
def espeak_version() -> str:
    """The ``espeak-ng --version`` line (part of the cache key)."""
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise TTSError("espeak-ng not found (install the Debian package espeak-ng)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False, timeout=30)
    return out.stdout.strip() or "unknown"


def run_espeak(args: list[str], *, text: str, timeout_s: float = 60.0) -> bytes:
    """Run espeak-ng with ``args`` and ``text`` on stdin; stdout bytes. Retries with backoff."""
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise TTSError("espeak-ng not found (install the Debian package espeak-ng)")
    delay = 0.1
    last = ""
    for attempt in range(_RETRIES):
        try:
            proc = subprocess.run(
                [exe, *args], input=text.encode("utf-8"), capture_output=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            last = "timed out"
        else:
            if proc.returncode == 0 and proc.stdout:
                return proc.stdout
            last = proc.stderr.decode("utf-8", "replace").strip() or f"exit {proc.returncode}"
        if attempt + 1 < _RETRIES:
            time.sleep(delay)
            delay *= 4
    raise TTSError(f"espeak-ng {' '.join(args)} failed: {last}")


def _key(text: str, voice: str, speed_wpm: int, pitch: int | None) -> str:
    raw = "\x1f".join([str(_CACHE_FORMAT), espeak_version(), voice, str(speed_wpm), str(pitch), text])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _decode_wav(data: bytes) -> np.ndarray:
    import soundfile as sf

    # espeak-ng writes a streaming WAV header whose sizes may be 0x7fffffff: soundfile copes.
    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    if rate != ESPEAK_RATE_HZ:
        raise TTSError(f"espeak-ng produced {rate} Hz, expected {ESPEAK_RATE_HZ}")
    return audio[:, 0]


def _resample(x: np.ndarray) -> np.ndarray:
    from scipy.signal import resample_poly

    g = np.gcd(SAMPLE_RATE_HZ, ESPEAK_RATE_HZ)
    return resample_poly(x, SAMPLE_RATE_HZ // g, ESPEAK_RATE_HZ // g).astype(np.float32)


def _quantise(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)


def _atomic_save(path: Path, pcm: np.ndarray) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".flac", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            sf.write(fh, pcm, SAMPLE_RATE_HZ, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_tts(text: str, voice: str, speed_wpm: int, pitch: int | None = None) -> np.ndarray:
    """Speak ``text`` with espeak-ng ``voice`` at ``-s speed_wpm`` (and ``-p pitch``).

    Returns float32 mono audio at 16 kHz (``pacelight.frames.SAMPLE_RATE_HZ``), 16-bit resolution.
    Mandarin needs the voice ``cmn-latn-pinyin`` and tone-numbered pinyin text ("ni3 hao3").
    """
    import soundfile as sf

    if not text.strip():
        raise ValueError("render_tts: empty text")
    speed_wpm = int(round(speed_wpm))
    if not MIN_SPEED_WPM <= speed_wpm <= MAX_SPEED_WPM:
        raise ValueError(f"render_tts: speed_wpm {speed_wpm} outside {MIN_SPEED_WPM}..{MAX_SPEED_WPM}")
    if pitch is not None and not 0 <= int(pitch) <= 99:
        raise ValueError(f"render_tts: pitch {pitch} outside 0..99")
    path = cache_dir() / (_key(text, voice, speed_wpm, pitch) + ".flac")
    if path.exists():
        try:
            pcm, _rate = sf.read(str(path), dtype="int16")
            return (pcm.astype(np.float32) / 32768.0).astype(np.float32)
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("dropping unreadable TTS cache entry %s: %s", path, exc)
    args = ["--stdout", "-v", voice, "-s", str(speed_wpm)]
    if pitch is not None:
        args += ["-p", str(int(pitch))]
    pcm = _quantise(_resample(_decode_wav(run_espeak(args, text=text))))
    try:
        _atomic_save(path, pcm)
    except (OSError, RuntimeError) as exc:  # a read-only cache must not break rendering
        log.warning("could not cache TTS render in %s: %s", path.parent, exc)
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)
