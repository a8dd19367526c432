"""Validated, streamed WAV input.

A call file is read block by block (never loaded whole), so memory stays constant in call length.
Every problem with the file becomes one :class:`~pacelight.errors.InputError` line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pacelight.errors import InputError
from pacelight.frames import MAX_INPUT_RATE_HZ, MIN_INPUT_RATE_HZ

log = logging.getLogger(__name__)

WAV_FORMATS = {"WAV", "WAVEX", "RF64", "W64"}
READ_BLOCK_S = 1.0


@dataclass(frozen=True)
class WavInfo:
    path: Path
    rate_hz: int
    channels: int
    frames: int
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate_hz


def probe(path: str | Path, max_channels: int = 2) -> WavInfo:
    """Open and validate a WAV file's header; raise InputError with a one-line reason."""
    import soundfile as sf  # lazy: native libsndfile

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a WAV file")
    try:
        info = sf.info(str(p))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise InputError(f"{p}: not a readable WAV file ({_short(exc)})") from None
    if info.format not in WAV_FORMATS:
        raise InputError(f"{p}: not a WAV file (format {info.format})")
    if not MIN_INPUT_RATE_HZ <= info.samplerate <= MAX_INPUT_RATE_HZ:
        raise InputError(
            f"{p}: unsupported sample rate {info.samplerate} Hz "
            f"(supported {MIN_INPUT_RATE_HZ}-{MAX_INPUT_RATE_HZ} Hz)"
        )
    if info.channels > max_channels:
        raise InputError(
            f"{p}: {info.channels} channels; expected mono (agent) or stereo (0 = agent, 1 = customer)"
        )
    if info.frames <= 0:
        raise InputError(f"{p}: contains no audio (0 s)")
    _check_not_truncated(p, info)
    return WavInfo(p, int(info.samplerate), int(info.channels), int(info.frames), str(info.subtype))


def _check_not_truncated(p: Path, info) -> None:
    """Reject a RIFF file whose header promises more data than the file holds."""
    try:
        with p.open("rb") as f:
            head = f.read(12)
            size = p.stat().st_size
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        riff_size = int.from_bytes(head[4:8], "little")
        if riff_size not in (0, 0xFFFFFFFF) and riff_size + 8 > size + 1:
            raise InputError(f"{p}: truncated WAV file (header says {riff_size + 8} bytes, file has {size})")


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else type(exc).__name__


def iter_blocks(info: WavInfo, block_s: float = READ_BLOCK_S) -> Iterator[np.ndarray]:
    """Yield float32 blocks of shape (n, 2): column 0 agent, column 1 customer (zeros for mono)."""
    import soundfile as sf

    block = max(1, int(info.rate_hz * block_s))
    try:
        with sf.SoundFile(str(info.path)) as f:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                if not len(data):
                    break
                if not np.isfinite(data).all():
                    data = np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0)
                if data.shape[1] == 1:
                    data = np.concatenate([data, np.zeros_like(data)], axis=1)
                yield np.clip(data, -1.0, 1.0, out=data)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise InputError(f"{info.path}: error while reading audio ({_short(exc)})") from None
