"""Train the learned syllable-nucleus density of the pace estimator (numpy/scipy only).

``python -m pacelight_train.syllables [--cv] [--out PATH]`` (``make pace-model``) trains on the EmoDB
**train** speakers only (manifest ``split``) and writes ``firmware/pacelight/pace/nuclei.npz``,
which ``pacelight.pace.estimator`` loads when ``PaceSettings(detector="learned")``.

Per 10 ms frame the input is :func:`pacelight.pace.estimator.nucleus_features` (7 sub-band levels
300–3400 Hz of ``len(OFFSETS)`` context frames, relative to the loudest level within ±150 ms),
computed offline exactly as the streaming estimator computes it (frames further than 2 frames from
activity are silence). The target is a per-frame syllable density: one unit-mass Gaussian bump per
labelled *vocalic* syllable (see :mod:`pacelight.pace.calibrate` for why consonant-only German
syllables are left out), centred in its span (onset → next onset/pause/end). The model
(softplus(w2 · tanh(x W1 + b1) + b2)) is fitted by L-BFGS on frame MSE to that target plus the
squared relative count error per clip (sum of density over active frames vs the syllable count), so
the count is what is optimised. Each train clip is used clean and through the telephone channel
(``pacelight.sim.effects.telephone``). Fixed seed; deterministic for a given numpy/scipy.

``--mix`` adds clips with only a clip-level count (no per-syllable alignment, so only the count
term applies to them): RAVDESS **train** speakers (both statements have 7 syllables; activity by
energy) and espeak-ng pseudo-words (:func:`pseudo_text`) in :data:`ESPEAK_VOICES` — none of the
benchmark's languages — at random speed and pitch, truth = vowel nuclei of espeak-ng's own IPA. It
is not the shipped model: see ``pacelight.pace.estimator`` for the measured comparison.

``--cv`` first reports a leave-two-speakers-out estimate on the train speakers (model selection
never looks at val/test); the final report prints held-out (val+test) per-utterance figures once.
"""

# ruff: noqa: E402  (numpy is imported after the thread settings, see below)
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from pacelight import native_threads

native_threads.apply()  # before numpy loads: one BLAS thread, so the L-BFGS fit is bit-reproducible

import numpy as np
from pacelight.frames import FRAME_S, FRAME_SAMPLES
from pacelight.pace.calibrate import EmoClip, load_emodb
from pacelight.pace.estimator import (
    _HIST_LO_DB,
    NUCLEUS_MODEL,
    PaceSettings,
    SyllableRateEstimator,
    frames_from_signal,
    nucleus_features,
)

log = logging.getLogger(__name__)

OFFSETS = np.array([-15, -12, -9, -6, -4, -2, -1, 0, 1, 2, 4, 6, 9, 12, 15])
FLOOR_DB = -50.0
HIDDEN = 16
SEED = 20261123


@dataclass(frozen=True)
class TrainConfig:
    hidden: int = HIDDEN
    bump_sigma_s: float = 0.03
    bump_pos: float = 0.5  # bump centre as a fraction of the syllable span
    count_weight: float = 1.0
    frame_weight: float = 1.0
    l2: float = 1e-3
    iters: int = 400
    telephone: bool = True
    speeds: tuple[float, ...] = (0.75, 1.3)  # extra speed-perturbed copies (resampled: tempo and spectrum)
    # language-independence mix (``--mix``; off for the shipped model, see the module docstring)
    ravdess: bool = False  # RAVDESS train speakers (clip-level count of 7)
    espeak_per_voice: int = 0  # espeak-ng pseudo-word utterances per voice (0 = none)
    ravdess_weight: float = 1.0  # count-loss weight of a sample of each kind, relative to EmoDB
    espeak_weight: float = 1.0


class _Probe:
    """Stands in for the model inside an estimator just to expose its band layout."""

    offsets = OFFSETS
    floor_db = FLOOR_DB
    context = int(np.max(np.abs(OFFSETS)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(x.shape[0])


def subband_levels(frames: np.ndarray, active: np.ndarray) -> np.ndarray:
    """(n + C, nb) sub-band levels (dB) per frame centre, as the streaming estimator computes them.

    Centre g uses frames g-1..g+1 (zeros outside the signal) and is computed only within 2 frames
    of an active frame (silence elsewhere); C trailing centres cover the finish() flush.
    """
    est = SyllableRateEstimator(PaceSettings(detector="learned"), nucleus_model=_Probe())
    c = _Probe.context
    n = frames.shape[0]
    pad = np.zeros((c + 2, FRAME_SAMPLES), np.float32)
    fr = np.concatenate([np.zeros((1, FRAME_SAMPLES), np.float32), frames, pad])  # frame -1 .. n+c+1
    act = np.concatenate([np.zeros(2, bool), active, np.zeros(c + 4, bool)])  # frame -2 .. n+c+3
    m = n + c
    flat = fr.reshape(-1)
    wins = np.lib.stride_tricks.sliding_window_view(flat, 3 * FRAME_SAMPLES)[::FRAME_SAMPLES][:m]
    need = np.lib.stride_tricks.sliding_window_view(act, 5).any(axis=1)[:m]
    lsb = np.full((m, est._bandmat.shape[1]), _HIST_LO_DB + 1.0, np.float32)
    rows = np.flatnonzero(need)
    if rows.size:
        lsb[rows] = est.subband_levels_db(wins[rows])  # the run time's own computation
    return lsb


def clip_features(x: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, F) learned-detector inputs and (n,) reference levels (dB) for every frame of a signal."""
    frames = frames_from_signal(x)
    c = _Probe.context
    lsb = subband_levels(frames, active)
    ext = np.concatenate([np.full((c, lsb.shape[1]), _HIST_LO_DB + 1.0, np.float32), lsb])
    x, ref = nucleus_features(ext, OFFSETS, FLOOR_DB)
    return x[:frames.shape[0]], ref[:frames.shape[0]]


def target_density(clip: EmoClip, n: int, cfg: TrainConfig) -> np.ndarray:
    t = (np.arange(n) + 0.5) * FRAME_S
    y = np.zeros(n)
    for (a, b), voc in zip(clip.syllable_spans_s(), clip.is_vocalic(), strict=True):
        if not voc:
            continue
        mu = a + cfg.bump_pos * (b - a)
        sig = min(cfg.bump_sigma_s, max(0.25 * (b - a), 0.01))
        g = np.exp(-0.5 * ((t - mu) / sig) ** 2)
        if g.sum() > 0:
            y += g / g.sum()
    return y


@dataclass
class Sample:
    clip: EmoClip | None  # None for RAVDESS / espeak-ng samples
    x: np.ndarray  # (n_active, F)
    y: np.ndarray | None  # (n_active,) per-frame target, None when only the clip's count is known
    count: float  # (vocalic) syllables
    voiced_s: float
    original: bool = True  # the clean, unperturbed clip (evaluation uses only these)
    kind: str = "emodb"  # "emodb", "ravdess" or "espeak"
    group: str = ""  # speaker (EmoDB/RAVDESS) or espeak voice


def _speed(c: EmoClip, x: np.ndarray, f: float) -> tuple[EmoClip, np.ndarray]:
    """Speed perturbation by resampling (played f times faster; the clip's times scale by 1/f)."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    q = Fraction(f).limit_denominator(20)
    y = resample_poly(x, q.denominator, q.numerator).astype(np.float32)
    k = 1.0 / float(q)
    c2 = replace(c, speech_s=c.speech_s * k, speech_start_s=c.speech_start_s * k, speech_end_s=c.speech_end_s * k,
                 pauses_s=tuple((a * k, b * k) for a, b in c.pauses_s), onsets_s=tuple(o * k for o in c.onsets_s))
    return c2, y


def build_samples(clips: list[EmoClip], cfg: TrainConfig, telephone: bool,
                  speeds: tuple[float, ...] = ()) -> list[Sample]:
    """Clean (+ telephone) samples per clip, first; then speed-perturbed clean copies."""
    from pacelight.sim.effects import telephone as tel

    out = []
    for c0 in clips:
        x0 = c0.load()
        for f in (1.0, *speeds):
            c, x = (c0, x0) if f == 1.0 else _speed(c0, x0, f)
            n = frames_from_signal(x).shape[0]
            act = c.active_mask(n)
            y = target_density(c, n, cfg)[act]
            count = float(sum(c.is_vocalic()))
            variants = [x, tel(x)[:x.size]] if (telephone and f == 1.0) else [x]
            for v in variants:
                out.append(Sample(c, clip_features(v, act)[0][act], y, count, act.sum() * FRAME_S, f == 1.0 and v is x,
                                  "emodb", c.speaker))
    return out


# ---------------------------------------------------------------- language-independence mix
RAVDESS_SYLLABLES = 7  # "Kids are talking by the door." / "Dogs are sitting by the door."
# espeak-ng voices for the pseudo-word mix. The benchmark's languages (en, ru, cmn sweep; de, es
# "other languages") are deliberately NOT here, so the benchmark measures cross-language transfer.
ESPEAK_VOICES = ("it", "pl", "pt", "tr", "sw", "id", "fi", "hu", "cs", "nl", "sv", "fr-fr", "ro", "sk", "hr", "ca")
_ONSETS = ("p", "t", "k", "b", "d", "g", "m", "n", "l", "r", "s", "f", "v", "pr", "tr", "kl", "st", "bl", "gr")
_VOWELS = "aeiou"
_CODAS = ("", "", "", "n", "m", "l", "r", "s", "t", "k")


def pseudo_text(rng: np.random.Generator, n_words: int) -> tuple[str, int]:
    """Random pronounceable pseudo-words (one vowel letter per syllable, no vowel hiatus)."""
    words, n = [], 0
    for w in range(n_words):
        k = int(rng.choice([1, 1, 2, 2, 2, 3, 3, 4]))
        parts = []
        for i in range(k):
            on = "" if (i == 0 and rng.random() < 0.2) else str(rng.choice(_ONSETS))
            cd = str(rng.choice(_CODAS)) if i == k - 1 or rng.random() < 0.3 else ""
            parts.append(on + _VOWELS[int(rng.integers(5))] + cd)
        n += k
        words.append("".join(parts) + ("," if w < n_words - 1 and rng.random() < 0.15 else ""))
    return " ".join(words) + ".", n


def espeak_items(n_per_voice: int, seed: int = SEED) -> list[tuple[str, str, int, int, int]]:
    """(text, voice, -s, -p, syllables) with truth = vowel nuclei of espeak-ng's own IPA.

    Utterances whose IPA nucleus count differs from the written syllable count (the voice read a
    word in an unexpected way) are dropped.
    """
    from pacelight.sim.syllables import _ipa, ipa_nuclei

    rng = np.random.default_rng(seed)
    out = []
    for voice in ESPEAK_VOICES:
        for _ in range(n_per_voice):
            text, n = pseudo_text(rng, int(rng.integers(4, 10)))
            speed = int(rng.integers(90, 330))
            pitch = int(rng.integers(20, 80))
            ipa = _ipa(text, voice)
            if "(" in ipa or ipa_nuclei(ipa) != n:
                continue
            out.append((text, voice, speed, pitch, n))
    return out


def espeak_samples(n_per_voice: int, telephone: bool) -> list[Sample]:
    from pacelight.pace.estimator import _energy_activity
    from pacelight.sim.effects import telephone as tel
    from pacelight.sim.tts import render_tts

    out = []
    for text, voice, speed, pitch, n in espeak_items(n_per_voice):
        x = render_tts(text, voice, speed, pitch)
        act = _energy_activity(frames_from_signal(x))
        if act.sum() < 50:
            continue
        for v in ([x, tel(x)[:x.size]] if telephone else [x]):
            out.append(Sample(None, clip_features(v, act)[0][act], None, float(n), act.sum() * FRAME_S,
                              v is x, "espeak", voice))
    log.info("espeak-ng mix: %d samples", len(out))
    return out


def ravdess_samples(splits: tuple[str, ...], telephone: bool) -> list[Sample]:
    """RAVDESS clips (real English, 7 syllables each; activity by energy, no per-syllable truth)."""
    import csv

    import soundfile as sf
    from pacelight.pace.calibrate import default_data_dir
    from pacelight.pace.estimator import _energy_activity
    from pacelight.sim.effects import telephone as tel

    d = default_data_dir()
    out = []
    with open(d / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["corpus"] == "ravdess" and r["split"] in splits]
    for r in rows:
        x, _sr = sf.read(str(d / r["path"]), dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        act = _energy_activity(frames_from_signal(x))
        for v in ([x, tel(x)[:x.size]] if telephone else [x]):
            out.append(Sample(None, clip_features(v, act)[0][act], None, float(RAVDESS_SYLLABLES),
                              act.sum() * FRAME_S, v is x, "ravdess", r["speaker"]))
    log.info("RAVDESS (%s): %d samples", ",".join(splits), len(out))
    return out


# ---------------------------------------------------------------- model
def _unpack(p: np.ndarray, nf: int, h: int):
    i = 0
    w1 = p[i:i + nf * h].reshape(nf, h)
    i += nf * h
    b1 = p[i:i + h]
    i += h
    w2 = p[i:i + h]
    i += h
    return w1, b1, w2, p[i]


def fit(samples: list[Sample], cfg: TrainConfig) -> dict[str, np.ndarray]:
    from scipy.optimize import minimize

    X = np.concatenate([s.x for s in samples]).astype(np.float64)
    Y = np.concatenate([s.y if s.y is not None else np.zeros(s.x.shape[0]) for s in samples])
    fm = np.concatenate([np.full(s.x.shape[0], s.y is not None) for s in samples]).astype(np.float64)
    seg = np.repeat(np.arange(len(samples)), [s.x.shape[0] for s in samples])
    cnt = np.array([s.count for s in samples])
    kw = {"emodb": 1.0, "ravdess": cfg.ravdess_weight, "espeak": cfg.espeak_weight}
    cw = np.array([kw[s.kind] for s in samples])
    cw = cw / cw.sum()
    mu, sd = X.mean(axis=0), X.std(axis=0) + 1e-3
    Xn = (X - mu) / sd
    nf, h = X.shape[1], cfg.hidden
    rng = np.random.default_rng(SEED)
    p0 = np.concatenate([rng.normal(0, 1 / np.sqrt(nf), nf * h), np.zeros(h), rng.normal(0, 0.1, h), [-3.0]])
    nfr, ncl = X.shape[0], len(samples)
    nfm = max(fm.sum(), 1.0)
    ymean2 = float(np.sum(fm * Y**2) / nfm) if fm.any() else 1.0

    def loss(p: np.ndarray) -> tuple[float, np.ndarray]:
        w1, b1, w2, b2 = _unpack(p, nf, h)
        a = np.tanh(Xn @ w1 + b1)
        z = a @ w2 + b2
        d = np.logaddexp(0.0, z)
        sig = 0.5 * (1 + np.tanh(0.5 * z))  # d softplus / dz
        D = np.bincount(seg, d, minlength=ncl)
        ec = (D - cnt) / np.maximum(cnt, 1.0)
        ef = (d - Y) * fm
        L = cfg.frame_weight * np.sum(ef**2) / (nfm * ymean2) + cfg.count_weight * np.sum(cw * ec**2)
        L += cfg.l2 * (np.sum(w1**2) + np.sum(w2**2))
        gd = cfg.frame_weight * 2 * ef / (nfm * ymean2)
        gd += cfg.count_weight * (2 * cw * ec / np.maximum(cnt, 1.0))[seg]
        gz = gd * sig
        gw2 = a.T @ gz + 2 * cfg.l2 * w2
        gb2 = gz.sum()
        ga = np.outer(gz, w2) * (1 - a**2)
        gw1 = Xn.T @ ga + 2 * cfg.l2 * w1
        gb1 = ga.sum(axis=0)
        return float(L), np.concatenate([gw1.ravel(), gb1, gw2, [gb2]])

    r = minimize(loss, p0, jac=True, method="L-BFGS-B", options={"maxiter": cfg.iters})
    log.info("fit: %d frames, %d clips, loss %.4f (%s)", nfr, ncl, r.fun, r.message)
    w1, b1, w2, b2 = _unpack(r.x, nf, h)
    # fold the input standardisation into the first layer
    w1f = w1 / sd[:, None]
    b1f = b1 - mu @ w1f
    return {"offsets": OFFSETS, "floor_db": np.float64(FLOOR_DB), "w1": w1f.astype(np.float32),
            "b1": b1f.astype(np.float32), "w2": w2.astype(np.float32), "b2": np.float64(b2)}


def predict_counts(params: dict, samples: list[Sample]) -> np.ndarray:
    out = []
    for s in samples:
        z = np.tanh(s.x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]
        out.append(float(np.logaddexp(0.0, z).sum()))
    return np.array(out)


def evaluate(params: dict, samples: list[Sample]) -> dict[str, float]:
    """Per-utterance rate vs ALL labelled syllables (as the benchmark scores); the count is the
    density mass, as the estimator reports it."""
    est = predict_counts(params, samples)
    true = np.array([s.clip.syllables / s.clip.speech_s for s in samples])
    return rate_stats(true, est / np.array([s.voiced_s for s in samples]))


def rate_stats(true: np.ndarray, est: np.ndarray) -> dict[str, float]:
    """Pearson r, mean absolute and mean relative error, and least-squares slope of ``est`` vs ``true`` rates."""
    rel = est / true - 1
    return {"r": float(np.corrcoef(true, est)[0, 1]), "mae": float(np.mean(np.abs(rel))),
            "bias": float(np.mean(rel)), "slope": float(np.polyfit(true, est, 1)[0])}


def save(params: dict, path: Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **params)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pacelight_train.syllables", description=__doc__.split("\n")[0])
    ap.add_argument("--cv", action="store_true", help="leave-two-speakers-out estimate on train speakers first")
    ap.add_argument("--out", type=Path, default=NUCLEUS_MODEL)
    ap.add_argument("--mix", action="store_true",
                    help="add RAVDESS train speakers and espeak-ng pseudo-words in 16 voices (clip-level counts)")
    args = ap.parse_args(argv if argv is not None else sys.argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = TrainConfig()
    if args.mix:
        cfg = replace(cfg, ravdess=True, espeak_per_voice=40, espeak_weight=2.0, iters=200)
    train = load_emodb(splits=("train",))
    samples = build_samples(train, cfg, cfg.telephone, cfg.speeds)
    if cfg.ravdess:
        samples += ravdess_samples(("train",), cfg.telephone)
    if cfg.espeak_per_voice:
        samples += espeak_samples(cfg.espeak_per_voice, cfg.telephone)
    if args.cv:
        spk = sorted({c.speaker for c in train})
        for k in range(0, len(spk), 2):
            hold = set(spk[k:k + 2])
            p = fit([s for s in samples if s.group not in hold], cfg)
            ev = evaluate(p, [s for s in samples if s.original and s.group in hold])
            sys.stdout.write(f"cv hold {sorted(hold)}: r {ev['r']:.3f} mae {ev['mae']:.3f} bias {ev['bias']:+.3f} "
                             f"slope {ev['slope']:.2f}\n")
    params = fit(samples, cfg)
    save(params, args.out)
    held = build_samples(load_emodb(splits=("val", "test")), cfg, telephone=False)
    ev = evaluate(params, held)
    nw = sum(int(np.size(params[k])) for k in ("w1", "b1", "w2")) + 1
    sys.stdout.write(f"wrote {args.out} ({nw} weights); held-out (val+test) per utterance: r {ev['r']:.3f} "
                     f"mae {ev['mae']:.3f} bias {ev['bias']:+.3f} slope {ev['slope']:.2f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
