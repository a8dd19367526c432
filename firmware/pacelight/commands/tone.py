"""``pacelight tone CLIP.wav [--json]``: vocal arousal of one speaker's clip (CONTRACT section 1)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pacelight.errors import InputError

MIN_CLIP_S = 0.3


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "tone", help="vocal arousal (low/neutral/high + 0..1 score) of one speaker's clip",
        description="Acoustic arousal of one speaker's clip with the shipped int8 TFLite model: "
        "2 s windows every 1 s, averaged. Arousal only: no emotion or valence claims.")
    p.add_argument("clip", metavar="CLIP.wav", help="mono WAV/FLAC, 8–48 kHz (stereo: first channel used)")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.add_argument("--model", default=None, help="TFLite model path (default: the shipped model)")
    p.set_defaults(func=run)


def load_clip(path: str | Path):
    """Read a clip as 16 kHz float32 mono (first channel of a multi-channel file)."""
    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly

    from pacelight.frames import MAX_INPUT_RATE_HZ, MIN_INPUT_RATE_HZ, SAMPLE_RATE_HZ

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    try:
        x, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, ValueError) as exc:
        raise InputError(f"{path}: not a readable audio file ({str(exc).splitlines()[0][:120]})") from None
    if not MIN_INPUT_RATE_HZ <= sr <= MAX_INPUT_RATE_HZ:
        raise InputError(f"{path}: unsupported sample rate {sr} Hz (8000–48000)")
    if x.shape[0] == 0:
        raise InputError(f"{path}: 0 s of audio")
    if x.shape[1] > 2:
        raise InputError(f"{path}: {x.shape[1]} channels; give one speaker's mono clip")
    x = x[:, 0]
    if sr != SAMPLE_RATE_HZ:
        from math import gcd

        g = gcd(sr, SAMPLE_RATE_HZ)
        x = resample_poly(x, SAMPLE_RATE_HZ // g, sr // g).astype(np.float32)
    if len(x) < MIN_CLIP_S * SAMPLE_RATE_HZ:
        raise InputError(f"{path}: too short ({len(x) / SAMPLE_RATE_HZ:.2f} s; need ≥ {MIN_CLIP_S} s)")
    return np.clip(np.nan_to_num(x), -1.0, 1.0)


def analyze_clip(signal, model) -> dict:
    """Silence-trimmed clip → 2 s windows every 1 s → per-window results and the clip's mean probabilities."""
    import numpy as np

    from pacelight.frames import FRAME_S
    from pacelight.tone.features import clip_model_inputs
    from pacelight.tone.model import LABELS, score_from_probs

    inputs, spans = clip_model_inputs(signal, trim=True)
    windows, probs = [], []
    for x, (a, b) in zip(inputs, spans, strict=True):
        p = model.predict_probs(x)
        probs.append(p)
        windows.append({"start_s": round(a * FRAME_S, 2), "end_s": round(b * FRAME_S, 2),
                        "arousal": LABELS[int(np.argmax(p))], "score": round(float(score_from_probs(p)), 4),
                        "probs": {k: round(float(v), 4) for k, v in zip(LABELS, p, strict=True)}})
    mean = np.mean(probs, axis=0)
    return {"arousal": LABELS[int(np.argmax(mean))], "score": round(float(score_from_probs(mean)), 4),
            "windows": windows}


def run(args: argparse.Namespace) -> int:
    from pacelight.tone.model import ToneModel

    signal = load_clip(args.clip)
    model = ToneModel(args.model)
    result = analyze_clip(signal, model)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    out = [f"{args.clip}: arousal {result['arousal']} (score {result['score']:.2f}) — {model.name()}"]
    for w in result["windows"]:
        out.append(f"  {w['start_s']:6.2f}–{w['end_s']:6.2f} s  {w['arousal']:<7}  score {w['score']:.2f}")
    out.append("Acoustic arousal only (how activated the voice sounds), not emotion or sentiment.")
    sys.stdout.write("\n".join(out) + "\n")
    return 0
