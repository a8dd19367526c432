"""Train the nucleus-event classifier of the pace estimator (numpy/scipy only).

``python -m pacelight_train.syllable_events [--cv] [--out PATH]`` trains on the EmoDB **train**
speakers only (manifest ``split``) and writes ``firmware/pacelight/pace/nucleus_events.npz``, which
``pacelight.pace.estimator`` loads when ``PaceSettings(detector="events")``.

Candidates and their features come from the streaming estimator itself (``detector="events"`` with a
probe model that records :func:`pacelight.pace.estimator.event_features` rows), so training and run
time cannot drift apart. A candidate is a local maximum of the (unsmoothed) sub-band correlation
envelope in an active frame above the level threshold whose dip to the nearest higher level is at
least :data:`MIN_PROMINENCE_DB` on both sides.

Labels come from ``emodb_syllables.csv``: within each labelled *vocalic* syllable span (onset → next
onset/pause/end, see :meth:`pacelight.pace.calibrate.EmoClip.syllable_spans_s`) the loudest candidate
is a nucleus, every other candidate is not. The model (sigmoid(w2 · tanh(x W1 + b1) + b2)) is fitted
by L-BFGS to the candidates' cross-entropy plus ``count_weight`` × the squared relative error of the
clip's summed probability against its vocalic syllable count; :data:`ENSEMBLE` nets from different
seeds are merged into one wider net (logits averaged). Each train clip is used clean, through the
telephone channel, and speed-perturbed (resampled) by each factor in ``speeds``. Added to them (unless
``--no-mix``): espeak-ng pseudo-words in 16 voices that are *not* benchmark languages
(:func:`pacelight_train.syllables.espeak_items`, 90–330 wpm, clean and telephone), which have only a
clip-level count, so only the count term applies to them. Fixed seeds; deterministic for a given
numpy/scipy and espeak-ng.

``--cv`` first reports a leave-two-speakers-out estimate on the train speakers (model selection never
looks at val/test); the final report prints held-out (val+test) per-utterance figures once.
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
from pacelight.pace.calibrate import EmoClip, load_emodb
from pacelight.pace.estimator import (
    EVENT_FEATURES,
    EVENT_MODEL,
    PaceSettings,
    SyllableRateEstimator,
    frames_from_signal,
)

from pacelight_train.syllables import _speed, rate_stats, save

log = logging.getLogger(__name__)

CONTEXT = 25  # ±250 ms of envelope around a candidate
MIN_PROMINENCE_DB = 0.3
HIDDEN = 16
ENSEMBLE = 4
SEED = 20261123


@dataclass(frozen=True)
class TrainConfig:
    hidden: int = HIDDEN
    ensemble: int = ENSEMBLE
    count_weight: float = 5.0
    l2: float = 1e-3
    iters: int = 300
    telephone: bool = True
    speeds: tuple[float, ...] = (0.6, 0.75, 0.9, 1.15, 1.3, 1.5)
    espeak_per_voice: int = 40  # espeak-ng pseudo-word utterances per voice (clip count only; 0 = none)
    espeak_weight: float = 0.5  # count-loss weight of one espeak-ng sample relative to one EmoDB sample


class _Probe:
    """Stands in for the classifier inside an estimator and records every candidate's features."""

    context = CONTEXT
    min_prominence_db = MIN_PROMINENCE_DB

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.rows.append(x.copy())
        return np.zeros(x.shape[0])


def candidates(x: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(k, F) features and (k,) times (s) of the candidates the estimator finds, and its voiced seconds."""
    probe = _Probe()
    est = SyllableRateEstimator(PaceSettings(detector="events", record_nuclei=True, calibration=1.0,
                                             min_voiced_s=0.0), event_model=probe)
    fr = frames_from_signal(x)
    for i in range(0, fr.shape[0], 5):
        est.process(fr[i:i + 5], active[i:i + 5])
    est.finish()
    feats = np.concatenate(probe.rows) if probe.rows else np.zeros((0, EVENT_FEATURES), np.float32)
    return feats, np.asarray(est.candidate_times_s, float), est.voiced_s


def labels(clip: EmoClip, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """1 for the loudest candidate (feature 1: level re the speaker reference) in each vocalic span."""
    y = np.zeros(t.size)
    for (a, b), voc in zip(clip.syllable_spans_s(), clip.is_vocalic(), strict=True):
        k = np.flatnonzero((t >= a) & (t < b))
        if voc and k.size:
            y[k[np.argmax(x[k, 1])]] = 1.0
    return y


@dataclass
class Sample:
    clip: EmoClip | None  # None for espeak-ng samples
    x: np.ndarray  # (k, F) candidate features
    y: np.ndarray | None  # (k,) labels; None when only the clip's count is known
    count: float  # vocalic syllables
    voiced_s: float
    original: bool  # the clean, unperturbed clip (evaluation uses only these)
    group: str = ""  # speaker or espeak-ng voice


def build_samples(clips: list[EmoClip], telephone: bool, speeds: tuple[float, ...] = ()) -> list[Sample]:
    from pacelight.sim.effects import telephone as tel

    out = []
    for c0 in clips:
        x0 = c0.load()
        for f in (1.0, *speeds):
            c, x = (c0, x0) if f == 1.0 else _speed(c0, x0, f)
            act = c.active_mask(frames_from_signal(x).shape[0])
            for v in ([x, tel(x)[:x.size]] if (telephone and f == 1.0) else [x]):
                feats, t, voiced = candidates(v, act)
                out.append(Sample(c, feats, labels(c, feats, t), float(sum(c.is_vocalic())), voiced,
                                  f == 1.0 and v is x, c0.speaker))
    return out


def espeak_samples(n_per_voice: int, telephone: bool) -> list[Sample]:
    """espeak-ng pseudo-words in voices that are not benchmark languages (clip-level counts only; see
    :func:`pacelight_train.syllables.espeak_items`)."""
    from pacelight.pace.estimator import _energy_activity
    from pacelight.sim.effects import telephone as tel
    from pacelight.sim.tts import render_tts

    from pacelight_train.syllables import espeak_items

    out = []
    for text, voice, speed, pitch, n in espeak_items(n_per_voice):
        x = render_tts(text, voice, speed, pitch)
        act = _energy_activity(frames_from_signal(x))
        if act.sum() < 50:
            continue
        for v in ([x, tel(x)[:x.size]] if telephone else [x]):
            feats, _t, voiced = candidates(v, act)
            out.append(Sample(None, feats, None, float(n), voiced, False, voice))
    log.info("espeak-ng mix: %d samples", len(out))
    return out


# ---------------------------------------------------------------- model
def _unpack(p: np.ndarray, nf: int, h: int):
    w1 = p[:nf * h].reshape(nf, h)
    b1 = p[nf * h:nf * h + h]
    w2 = p[nf * h + h:nf * h + 2 * h]
    return w1, b1, w2, p[-1]


def _fit_one(X: np.ndarray, Y: np.ndarray, lab: np.ndarray, seg: np.ndarray, cnt: np.ndarray, cw: np.ndarray,
             cfg: TrainConfig, seed: int):
    from scipy.optimize import minimize

    mu, sd = X.mean(axis=0), X.std(axis=0) + 1e-3
    Xn = (X - mu) / sd
    nf, h = X.shape[1], cfg.hidden
    rng = np.random.default_rng(seed)
    p0 = np.concatenate([rng.normal(0, 1 / np.sqrt(nf), nf * h), np.zeros(h), rng.normal(0, 0.1, h), [0.0]])
    n = max(float(lab.sum()), 1.0)

    def loss(p: np.ndarray) -> tuple[float, np.ndarray]:
        w1, b1, w2, b2 = _unpack(p, nf, h)
        a = np.tanh(Xn @ w1 + b1)
        z = a @ w2 + b2
        q = 0.5 * (1 + np.tanh(0.5 * z))
        ec = (np.bincount(seg, q, minlength=cnt.size) - cnt) / np.maximum(cnt, 1.0)
        L = np.sum(lab * (np.logaddexp(0.0, z) - Y * z)) / n + cfg.count_weight * np.sum(cw * ec**2)
        L += cfg.l2 * (np.sum(w1**2) + np.sum(w2**2))
        gz = lab * (q - Y) / n + cfg.count_weight * (2 * cw * ec / np.maximum(cnt, 1.0))[seg] * q * (1 - q)
        ga = np.outer(gz, w2) * (1 - a**2)
        grad = np.concatenate([(Xn.T @ ga + 2 * cfg.l2 * w1).ravel(), ga.sum(axis=0), a.T @ gz + 2 * cfg.l2 * w2,
                               [gz.sum()]])
        return float(L), grad

    r = minimize(loss, p0, jac=True, method="L-BFGS-B", options={"maxiter": cfg.iters})
    log.info("fit (seed %d): %d candidates, %d clips, loss %.4f (%s)", seed, Y.size, cnt.size, r.fun, r.message)
    w1, b1, w2, b2 = _unpack(r.x, nf, h)
    w1f = w1 / sd[:, None]  # fold the input standardisation into the first layer
    return w1f, b1 - mu @ w1f, w2, float(b2)


def fit(samples: list[Sample], cfg: TrainConfig) -> dict[str, np.ndarray]:
    X = np.concatenate([s.x for s in samples]).astype(np.float64)
    Y = np.concatenate([s.y if s.y is not None else np.zeros(s.x.shape[0]) for s in samples])
    lab = np.concatenate([np.full(s.x.shape[0], s.y is not None, float) for s in samples])
    seg = np.repeat(np.arange(len(samples)), [s.x.shape[0] for s in samples])
    cnt = np.array([s.count for s in samples])
    cw = np.array([1.0 if s.clip is not None else cfg.espeak_weight for s in samples])
    cw = cw / cw.sum()
    nets = [_fit_one(X, Y, lab, seg, cnt, cw, cfg, SEED + k) for k in range(cfg.ensemble)]
    # one wider net: hidden units side by side, output logits averaged
    return {"context": np.int64(CONTEXT), "min_prominence_db": np.float64(MIN_PROMINENCE_DB),
            "w1": np.concatenate([w[0] for w in nets], axis=1).astype(np.float32),
            "b1": np.concatenate([w[1] for w in nets]).astype(np.float32),
            "w2": (np.concatenate([w[2] for w in nets]) / len(nets)).astype(np.float32),
            "b2": np.float64(np.mean([w[3] for w in nets]))}


def predict_counts(params: dict, samples: list[Sample]) -> np.ndarray:
    out = []
    for s in samples:
        z = np.tanh(s.x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]
        out.append(float(np.sum(0.5 * (1 + np.tanh(0.5 * z)))))
    return np.array(out)


def evaluate(params: dict, samples: list[Sample]) -> dict[str, float]:
    """Per-utterance rate vs ALL labelled syllables (as the benchmark scores)."""
    est = predict_counts(params, samples) / np.array([s.voiced_s for s in samples])
    true = np.array([s.clip.syllables / s.clip.speech_s for s in samples])
    return rate_stats(true, est)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pacelight_train.syllable_events", description=__doc__.split("\n")[0])
    ap.add_argument("--cv", action="store_true", help="leave-two-speakers-out estimate on train speakers first")
    ap.add_argument("--out", type=Path, default=EVENT_MODEL)
    ap.add_argument("--no-mix", action="store_true",
                    help="EmoDB only (no espeak-ng pseudo-words in 16 non-benchmark voices)")
    args = ap.parse_args(argv if argv is not None else sys.argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = TrainConfig()
    if args.no_mix:
        cfg = replace(cfg, espeak_per_voice=0)
    train = load_emodb(splits=("train",))
    samples = build_samples(train, cfg.telephone, cfg.speeds)
    if cfg.espeak_per_voice:
        samples += espeak_samples(cfg.espeak_per_voice, cfg.telephone)
    if args.cv:
        spk = sorted({c.speaker for c in train})
        held = [s for s in samples if s.original]
        pred = np.zeros(len(held))
        for k in range(0, len(spk), 2):
            hold = set(spk[k:k + 2])
            p = fit([s for s in samples if s.group not in hold], cfg)
            idx = [i for i, s in enumerate(held) if s.group in hold]
            pred[idx] = predict_counts(p, [held[i] for i in idx])
        cv = rate_stats(np.array([s.clip.syllables / s.clip.speech_s for s in held]),
                        pred / np.array([s.voiced_s for s in held]))
        sys.stdout.write(f"cv (leave two train speakers out, pooled): r {cv['r']:.3f} "
                         f"mae {cv['mae']:.3f} bias {cv['bias']:+.3f}\n")
    params = fit(samples, cfg)
    save(params, args.out)
    ev = evaluate(params, build_samples(load_emodb(splits=("val", "test")), telephone=False))
    nw = sum(int(np.size(params[k])) for k in ("w1", "b1", "w2")) + 1
    sys.stdout.write(f"wrote {args.out} ({nw} weights); held-out (val+test) per utterance: r {ev['r']:.3f} "
                     f"mae {ev['mae']:.3f} bias {ev['bias']:+.3f} slope {ev['slope']:.2f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
