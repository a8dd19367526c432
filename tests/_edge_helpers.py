"""Helpers for the edge runtime tests: simulated multi-call sessions and test configs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RATE_HZ = 16_000


def tone_model_env() -> dict[str, str]:
    """Point the tone model at the built model when no shipped one is in models/ yet."""
    if os.environ.get("PACELIGHT_TONE_MODEL") or list((ROOT / "models").glob("tone-*.tflite")):
        return {}
    built = sorted((ROOT / "models" / "build").glob("tone-*int8.tflite"))
    return {"PACELIGHT_TONE_MODEL": str(built[0])} if built else {}


@dataclass
class Session:
    audio: np.ndarray  # (n, 2) float32 at RATE_HZ
    calls_s: list[tuple[float, float]]  # [start, end) of each simulated call in the session
    truths: list[dict]


def longest_gap_s(truth: dict) -> float:
    segs = sorted(s for p in ("agent", "customer") for s in truth["segments"][p])
    gap, end = 0.0, segs[0][1]
    for s, e in segs[1:]:
        gap = max(gap, s - end)
        end = max(end, e)
    return gap


def make_session(seeds=(1, 2), call_s: float = 20.0, gaps_s=(2.0, 20.0, 12.0), effects: bool = True) -> Session:
    """Silence, call, silence, call, ..., silence (quiet noise floor between calls)."""
    from pacelight.sim import CallSpec, simulate_call

    rng = np.random.default_rng(0)
    spec = CallSpec(duration_s=call_s, langs=("en",), hold_prob=0.0, sources=("tts",), rate_hz=RATE_HZ,
                    effects=effects)
    parts, calls, truths, t = [], [], [], 0.0
    for i, seed in enumerate(seeds):
        gap = np.zeros((int(gaps_s[i] * RATE_HZ), 2), np.float32)
        parts.append(gap)
        t += gaps_s[i]
        c = simulate_call(spec, seed)
        parts.append(c.audio)
        calls.append((t, t + len(c.audio) / RATE_HZ))
        truths.append(c.truth)
        t += len(c.audio) / RATE_HZ
    parts.append(np.zeros((int(gaps_s[len(seeds)] * RATE_HZ), 2), np.float32))
    audio = np.concatenate(parts)
    audio += (rng.standard_normal(audio.shape) * 3e-4).astype(np.float32)  # ~-70 dBFS line noise
    return Session(audio, calls, truths)


def write_wav(path: Path, audio: np.ndarray, rate_hz: int = RATE_HZ) -> Path:
    import soundfile as sf

    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
    sf.write(str(path), pcm, rate_hz, subtype="PCM_16")
    return path


def write_config(path: Path, tmp: Path, wav: Path, *, speed: float = 1.0, after_eof: str = "silence",
                 detect: str = "activity", end_silence_s: float = 8.0, extra: str = "") -> Path:
    path.write_text(f"""
[device]
id = "edge-test"
data_dir = "{tmp}"
outbox_path = "{tmp / 'outbox.sqlite'}"

[capture]
backend = "wav"
wav_path = "{wav}"
wav_speed = {speed}
wav_after_eof = "{after_eof}"
chunk_s = 0.02

[calls]
detect = "{detect}"
end_silence_s = {end_silence_s}

[health]
status_path = "{tmp / 'status.json'}"
interval_s = 0.2
{extra}
""")
    return path
