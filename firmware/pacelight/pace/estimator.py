"""Streaming, language-independent syllable-rate (pace) estimator.

Syllable nuclei are counted in the spirit of de Jong & Wempe (2009, "Praat script to detect
syllable nuclei and measure speech rate automatically", Behavior Research Methods 41(2)):

1. **Band-limited intensity.** Per 10 ms frame, the energy of a Hann-windowed 30 ms window in
   the vowel-formant band (``band_lo_hz``–``band_hi_hz``, default 300–2300 Hz). The band sits
   inside the telephone band (300–3400 Hz), so wideband, telephone-band, μ-law and 8 kHz→16 kHz
   upsampled input all see the same feature; it also keeps fricatives (mostly > 3 kHz) and
   low-frequency hum/voice bars out of the envelope.
2. **Smoothing.** A symmetric Hann FIR over frames (``smooth_frames``), then dB.
3. **Peaks with a minimum dip.** A hysteresis peak picker over the local extrema of the smoothed
   envelope: a nucleus is a peak at least ``min_dip_db`` above the valley before it *and* the
   valley after it (de Jong & Wempe use 2 dB).
4. **Level threshold.** The peak must be within ``silence_threshold_db`` of the speaker's
   recent loud-speech level (a forgetting histogram of active-frame levels; its
   ``ref_percentile``), and above an absolute floor.
5. **Voicing.** The normalised autocorrelation (Boersma 1993 window correction) of the 30 ms
   window at the peak must reach ``voicing_threshold`` for a lag in the 70–400 Hz F0 range.
6. **Pauses.** Only frames the caller marks ``active`` (the party talks; echo-gated; pauses
   < 0.2 s bridged) count, both for nuclei and for the voiced time. Inactive stretches simply
   contribute nothing.

The raw count is multiplied by one global calibration factor (``PaceSettings.calibration``).
:data:`CALIBRATION_SCALE` is the factor fitted on EmoDB *train* speakers (acted read German,
hand-labelled realised syllables); the product default is :data:`DEFAULT_CALIBRATION` = 1.0, see
the note there.

Known limit (measured 2026-11-23, docs/benchmarks.md "Error diagnosis"): on single ≤ 2 s EmoDB
utterances the per-utterance rate correlates only r ≈ 0.62 with the truth (count r ≈ 0.78), and
all of that error is in the count, not the voiced time: syllables shorter than ~120 ms are often
missed and ones longer than ~300 ms often split, which compresses the rate range (slope ≈ 0.5).
Throwaway sweeps on the train speakers (dip 1–4 dB, smoothing 1/3/5 frames, plain bands
250–3400 Hz, top 2–7 sub-bands, voicing 0.2–0.75 and ±10–30 ms, silence threshold 20–40 dB,
envelope × voicing or × band/total ratio, one-sided DJW dips, spectral-change-gated dips, a
per-clip rate-adaptive dip, positive spectral flux, Laplacian-of-Gaussian blobs, envelope
modulation spectrum, averaging several variants): none exceeded train r 0.73 (held-out 0.68),
and the intensity variants' count errors correlate 0.75–0.94 with each other. Whole-call and ≥ 20 s
rates are fine (errors average out); per-utterance accuracy on 2 s clips needs a different kind
of detector, not a re-tune of this one.

Learned detector (``PaceSettings(detector="learned")``, **off by default**; 2026-11-23). A
1-hidden-layer MLP (:func:`nucleus_features`: the 7 sub-band levels of 15 context frames within
±150 ms, relative to the loudest level there; 16 tanh units; 1,713 weights in ``nuclei.npz``, 8 KB)
predicts a per-frame syllable density whose sum over active frames is the count. Trained by
``python -m pacelight_train.syllables`` (``make pace-model``) on EmoDB train speakers only (clean,
telephone, speed-perturbed ×0.75/×1.3). Measured side by side (docs/benchmarks.md, sections
"pace_accuracy" and "pace_accuracy_learned"): EmoDB held-out per utterance r 0.691 / MAE 11.1 %
(peaks 0.619 / 13.1 %) and ≥ 20 s concatenations MAE 6.5 % (peaks 9.9 %) — better on EmoDB, still
short of 0.80 / 10 % — but a density regresses toward the training rate (rate slope vs truth 0.40):
espeak-ng streams read up to +61.9 % (cmn −s 120), +31.4 % (en −s 120) and −22.0 % (ru −s 260)
where the peak picker stays within 5 %, so the ±15 % within-call change is detected in 1/24 cases
(peaks 24/24); on the simulated noisy calls it reads +29.5 % (peaks 3.2 % MAE), and a steady tone
or white noise marked active reads ~3 syl/s (peaks 0–0.8). CPU 0.41 ms per audio second (peaks
0.45–0.48). It does not win everywhere, so it stays off by default.

Since 2026-11-23 (later) the learned detector's count is the summed density itself (fractional,
:attr:`SyllableRateEstimator.raw_nuclei`), not that sum rounded to whole nuclei: rounding added
±0.5 syllable of noise per clip. Offline on EmoDB held-out utterances this alone moves r from 0.691
to ≈ 0.73 (benchmark figures in docs/benchmarks.md). Tried the same day to make it language
independent, measured offline on held-out EmoDB and the benchmark's en/ru/cmn streams at −s
120/190/260 (clean and telephone), none good enough to ship or to make the default:

* ``python -m pacelight_train.syllables --mix`` (EmoDB train + RAVDESS train speakers with a
  clip-level count of 7 + espeak-ng pseudo-words in 16 voices that are *not* benchmark languages,
  90–330 wpm, clean and telephone; clip-level count loss where there is no alignment): espeak-ng
  max error 62 % → 25 %, but EmoDB r 0.73 → 0.66, and the rate slope stays ≈ 0.3 — a per-frame
  density still regresses toward the mean rate. ±300 ms context instead of ±150 ms: no better
  (r 0.64, espeak max 22 %).
* Peak candidates at a 1 dB dip, each weighted by a small MLP (sub-band context, voicing, level,
  spacing) fitted to clip counts on the same mix: it keeps the peak picker's rate tracking
  (espeak max 9–13 %) but EmoDB r only 0.64–0.67 (peaks 0.62).
* 0.3 × peaks + 0.7 × learned count: EmoDB r 0.75, but inherits the learned espeak-ng errors.

Nucleus-event detector (``PaceSettings(detector="events")``, **the default since 2026-11-23**; the
peak picker above stays available as ``detector="peaks"``, ``[pipeline.pace]`` in the device config).
Counts are events, so the count scales with tempo like the peak picker's, but a classifier trained on
per-syllable labels decides which events are nuclei:

1. Candidates: every local maximum of the *unsmoothed* sub-band correlation envelope in an active frame
   above the level threshold (as in steps 4/6 above) whose dip to the nearest higher level is ≥ 0.3 dB
   on both sides (``min_prominence_db`` in the model file). On EmoDB they fall into 97 % (train) /
   96 % (held-out) of the labelled vocalic syllable spans, ~1.7 candidates per syllable (all maxima of
   the 3-frame-smoothed envelope, the peak picker's: 96 % / 95 %).
2. :func:`event_features` (100 numbers: level re the ±250 ms maximum and re the speaker reference;
   prominence, dip and distance to the neighbouring higher level / local maximum on both sides; peak
   density; voicing; sub-band shape and its change; the ±250 ms level profile; sub-band levels at
   ±80 ms; level and spectral distance to the neighbouring maxima and valleys).
3. A 4 × 16-tanh-unit MLP ensemble (``nucleus_events.npz``, 6,529 weights) gives P(nucleus); the count
   is the summed probability. Trained by ``python -m pacelight_train.syllable_events`` (``make
   pace-model``) on EmoDB train speakers (label: the loudest candidate in each labelled vocalic
   syllable span; cross-entropy + clip count loss; clean, telephone, speed ×0.6–1.5) plus espeak-ng
   pseudo-words in 16 non-benchmark voices (count loss only).
4. Its internal chunk is ``event_chunk_frames`` (3 s; lag ≤ ≈ 3.3 s): at 1 s chunks the per-chunk
   numpy work cost 0.73 ms per audio second.

Measured (docs/benchmarks.md "pace_accuracy"; the peak picker side by side in "pace_accuracy_peaks"): EmoDB held-out per utterance r 0.725 / MAE
11.1 % (bias −5.7 %, rate slope 0.53; peaks 0.619 / 13.1 %, learned 0.735 / 10.9 %) — still short of
0.80 / 10 %; ≥ 20 s concatenations MAE 8.5 %; espeak-ng en/ru/cmn −s 120…260 max error 6.1 % (mean
2.4 %), monotonic, telephone growth −0.1 points; ±15 % change 24/24 with 0/12 false alarms; de/es
4.8 %; simulated calls (truth segments) MAE 4.5 %, r 0.980; 0.40 ms per audio second. So it passes
every target the peak picker passes and is better on EmoDB and on the simulated calls; it still fails
the per-utterance EmoDB targets (issue 4 stays open on those). It is the default because it is the
better estimator on real speech and in the product: through the whole pipeline on the 30 simulated
calls pace MAE 6.4 % / r 0.964 (peaks 7.1 % / 0.933), and the rapport pace cue fires for 45/45
non-adapting agents (peaks 44/45), 0/45 adapting — at the cost of a longer lag (≈ 3.3 s, irrelevant
for a rolling 20 s rate) and a slightly larger worst espeak-ng error (6.1 % vs 5.0 %, both within 10 %). Its EmoDB-train calibration (1.0637, the
one global factor allowed) does not rescue it (benchmark with ``--calibration 1.0637``, not recorded):
EmoDB MAE 10.8 % (r unchanged), but espeak-ng max error 10.1 % and simulated calls +10.4 % — so 1.0,
as for the peak picker. Leave-two-train-speakers-out CV (pooled):
r 0.771 / MAE 11.1 % with the espeak-ng mix, 0.754 without it (at 1 s chunks), where espeak-ng
slow speech read up to +13 % (cmn −s 120). Tried on the way (train CV, pooled r, one net): only the 23
scalar features (0.72; with the level/sub-band profiles 0.76); 32 units with less weight decay (0.72);
count-loss weight 1/5/20 (0.75/0.76/0.76); ±350 ms context (no better); no prominence floor (0.74,
espeak-ng slow speech up to +26 %). Where it stops: with a perfect classifier these candidates would give
held-out r 0.87 (the 3-frame-smoothed envelope's only 0.84 — missing candidates in short syllables),
but the classifier (candidate AUC 0.97) still leaves about ±1 syllable of error on a 2 s clip and
compresses the rate range (slope 0.53).

Streaming: audio arrives in blocks of any size; frames are buffered and analysed in fixed
internal chunks of ``chunk_frames`` frames (vectorised numpy per chunk; a Python loop runs only
over the few envelope extrema), so results are bit-identical however the caller blocks its
audio. The analysis lags the input by at most ``chunk_frames + smooth_frames // 2 + 1`` frames
(≈ 1.3 s; the events detector: ``event_chunk_frames`` + its ±25-frame context + 2, ≈ 3.3 s). Memory is constant except for :meth:`SyllableRateEstimator.timeline` (one point per
second of call). Call :meth:`SyllableRateEstimator.finish` at the end of a call to analyse the
buffered tail.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pacelight.frames import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

# One global calibration factor: true syllables / detected nuclei, fitted on the EmoDB TRAIN
# speakers (11–16, 346 clips with syllable truth) only, as sum(labelled vocalic syllables) /
# sum(detected nuclei), counting nuclei only inside the labelled speech span (labelled pauses
# removed), with the default settings below (2026-11-23, detector "events": 1.0363; against all
# labelled syllables, incl. German consonant-only ones such as "gn"/"bm", it would be 1.0637 — see
# pacelight.pace.calibrate for why the vocalic fit is used; the peak picker's were 1.0554 / 1.0833).
# Re-fit with ``python -m pacelight.pace.calibrate`` after changing any detector setting.
CALIBRATION_SCALE = 1.0363
# Product default: no scaling. Measured side by side (docs/benchmarks.md, pace sections): the
# EmoDB-fitted 1.0554 brings EmoDB held-out ≥ 20 s concatenations from 9.9 % to 6.3 % mean error,
# but on conversational multi-language calls through the whole pipeline it adds a +5.5 % bias
# (per-call mean error 5.9 % → 11.8 % on 30 simulated calls, 43 party-calls), because clearly
# articulated speech has fewer reduced syllables for the detector to miss than acted read clips
# of 2 s (measured with the peak picker; for the events detector a fitted scale likewise pushed the
# espeak-ng streams and the simulated calls past 10 %, see the module docstring). 1.0 stays within
# 10 % on both kinds of material; the fitted value is kept for reference and for deployments whose
# speech resembles EmoDB (``calibration`` in the device config's ``[pipeline.pace]`` table).
DEFAULT_CALIBRATION = 1.0

_WIN_FRAMES = 3  # analysis window: 30 ms centred on the frame (frames k-1, k, k+1)
_NFFT = 720  # voicing: ≥ 480 + max lag (229), so the autocorrelation does not wrap
_NFFT_E = 480  # band energy: the 30 ms window itself, no padding (33.3 Hz bins)
_F0_MIN_HZ = 70.0
_F0_MAX_HZ = 400.0
_HIST_LO_DB = -120.0
_HIST_STEP_DB = 0.5
_HIST_BINS = 280  # -120 … +20 dB


# Weights of the learned nucleus-density detector (``detector="learned"``), written by
# ``python -m pacelight_train.syllables`` (trained on EmoDB train speakers only).
NUCLEUS_MODEL = Path(__file__).with_name("nuclei.npz")
_MODEL_CACHE: dict[tuple[type, str], object] = {}  # see _cached_model


def nucleus_features(lsb_ext: np.ndarray, offsets: np.ndarray, floor_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame inputs of the learned detector (pure; shared by run time and training).

    ``lsb_ext`` (n + 2C, nb): sub-band levels (dB) of consecutive frame centres, C = max |offset|;
    returns (n, len(offsets) * nb) for the n centres C .. C + n - 1: each context frame's sub-band
    levels relative to the loudest sub-band level within ±C frames of the centre, clipped at
    ``floor_db`` and scaled to [-1, 0]. Relative levels only, so gain and channel level do not matter.
    Also returns that reference level (n,) per centre (the run time gates silence with it).
    """
    c = int(np.max(np.abs(offsets)))
    n = lsb_ext.shape[0] - 2 * c
    top = lsb_ext.max(axis=1)
    ref = np.lib.stride_tricks.sliding_window_view(top, 2 * c + 1).max(axis=1)[:n]
    rows = lsb_ext[(c + np.arange(n))[:, None] + np.asarray(offsets)[None, :]]  # (n, K, nb)
    x = np.maximum(rows - ref[:, None, None], floor_db) * (-1.0 / floor_db)
    return x.reshape(n, -1).astype(np.float32), ref


class _NucleusModel:
    """Per-frame syllable density = softplus(w2 · tanh(x W1 + b1) + b2) (a few thousand weights)."""

    def __init__(self, path: Path) -> None:
        with np.load(path) as z:
            self.offsets = z["offsets"].astype(np.int64)
            self.floor_db = float(z["floor_db"])
            self.w1 = z["w1"].astype(np.float32)
            self.b1 = z["b1"].astype(np.float32)
            self.w2 = z["w2"].astype(np.float32)
            self.b2 = float(z["b2"])
        self.context = int(np.max(np.abs(self.offsets)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = np.tanh(x @ self.w1 + self.b1) @ self.w2 + self.b2
        return np.logaddexp(0.0, z)


def _cached_model(cls: type, path: Path):
    """One loaded instance of model class ``cls`` per weights file (loaded on first use)."""
    key = (cls, str(path))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = cls(path)
    return _MODEL_CACHE[key]


def load_nucleus_model(path: Path | None = None) -> _NucleusModel:
    """The shipped nucleus model (cached; loaded only when ``detector="learned"`` is used)."""
    return _cached_model(_NucleusModel, Path(path) if path is not None else NUCLEUS_MODEL)


# Weights of the nucleus-event classifier (``detector="events"``), written by
# ``python -m pacelight_train.syllable_events`` (trained on EmoDB train speakers only).
EVENT_MODEL = Path(__file__).with_name("nucleus_events.npz")
_PROFILE_LEV = np.array([-25, -20, -15, -11, -8, -6, -4, -3, -2, -1, 1, 2, 3, 4, 6, 8, 11, 15, 20, 25])
_PROFILE_SB = np.array([-8, -4, -2, 0, 2, 4, 8])
EVENT_FEATURES = 23 + 20 + 49 + 8  # length of an event_features row


def event_features(lev: np.ndarray, lsb: np.ndarray, act: np.ndarray, idx: np.ndarray, voicing: np.ndarray,
                   ref_db: float, c: int) -> np.ndarray:
    """Features of candidate nuclei (pure; shared by run time and training).

    ``lev`` (m,): smoothed envelope levels (dB) of consecutive frames; ``lsb`` (m, nb): their sub-band
    levels (dB); ``act`` (m,): activity; ``idx`` (k,): candidate positions (local maxima of ``lev``,
    c <= idx < m - c); ``voicing`` (k,) at the candidates; ``ref_db``: the speaker's reference level.
    Returns (k, EVENT_FEATURES): level relative to the ±c context maximum and to ``ref_db``; prominence
    and distance to the nearest higher level on each side; dip and distance to the neighbouring local
    maximum on each side; density of local maxima around; voicing; the sub-band shape and its change
    over ±3 frames; activity around; width at -3 dB. Only level differences and frame distances —
    gain-independent. Each row depends only on ``lev``/``lsb``/``act`` within ±c of its candidate.
    """
    k = idx.size
    if k == 0:
        return np.zeros((0, EVENT_FEATURES), np.float32)
    w = 2 * c + 1
    win_idx = idx[:, None] + np.arange(-c, c + 1)[None, :]
    win = lev[win_idx]  # (k, w), centre at column c
    v = lev[idx]
    ismax = np.zeros(lev.size, bool)
    ismax[1:-1] = (lev[1:-1] > lev[:-2]) & (lev[1:-1] >= lev[2:])
    mwin = ismax[win_idx]
    # both sides at once: [0] left, [1] right; columns = distance 1 .. c from the centre
    side = np.stack([win[:, c - 1::-1], win[:, c + 1:]])
    mside = np.stack([mwin[:, c - 1::-1], mwin[:, c + 1:]])
    big = 1e9
    higher = side > v[:, None]
    prom = v - np.where(np.cumsum(higher, axis=2) == 0, side, big).min(axis=2)
    dist_h = np.where(higher.any(axis=2), higher.argmax(axis=2) + 1, c + 1)
    to_max = np.where(np.cumsum(mside, axis=2) == 0, side, big)  # up to the neighbouring maximum
    valley = to_max.argmin(axis=2)
    dip = v - np.take_along_axis(to_max, valley[:, :, None], axis=2)[:, :, 0]
    valley += 1
    dist_m = np.where(mside.any(axis=2), mside.argmax(axis=2) + 1, c + 1)
    width = np.cumprod(side >= (v - 3.0)[:, None], axis=2).sum(axis=2)
    shape = np.maximum(lsb - lsb.max(axis=1, keepdims=True), -40.0) / 40.0
    near = np.stack([idx - 3, idx + 3, idx - np.minimum(dist_m[0], c), idx + np.minimum(dist_m[1], c),
                     idx - valley[0], idx + valley[1]])  # (6, k)
    sdist = np.abs(shape[idx][None] - shape[near]).sum(axis=2) * (10.0 / shape.shape[1])
    top = lsb[idx].max(axis=1)
    return np.concatenate([
        np.maximum(v - win.max(axis=1), -40.0)[:, None] / 10.0,
        np.clip(v - ref_db, -40.0, 10.0)[:, None] / 10.0,
        np.minimum(prom, 30.0).T / 10.0,
        dist_h.T / c,
        np.minimum(dip, 30.0).T / 10.0,
        dist_m.T / c,
        mwin.sum(axis=1)[:, None] * (10.0 / w),
        voicing[:, None],
        shape[idx],
        sdist[:2].T,
        act[win_idx].sum(axis=1)[:, None] / w,
        (width.sum(axis=0) + 1)[:, None] / c,
        np.clip(lev[idx[:, None] + _PROFILE_LEV[None, :]] - v[:, None], -30.0, 10.0) / 10.0,
        (np.clip(lsb[idx[:, None] + _PROFILE_SB[None, :]] - top[:, None, None], -40.0, 10.0) / 20.0).reshape(k, -1),
        np.stack([np.clip(lev[near[2]] - v, -30.0, 10.0) / 10.0, sdist[2],
                  np.clip(lev[near[3]] - v, -30.0, 10.0) / 10.0, sdist[3],
                  np.clip(lev[near[4]] - v, -30.0, 10.0) / 10.0, sdist[4],
                  np.clip(lev[near[5]] - v, -30.0, 10.0) / 10.0, sdist[5]], axis=1),
    ], axis=1).astype(np.float32)


class _EventModel:
    """P(candidate is a syllable nucleus) = sigmoid(w2 · tanh(x W1 + b1) + b2)."""

    def __init__(self, path: Path) -> None:
        with np.load(path) as z:
            self.context = int(z["context"])
            self.min_prominence_db = float(z["min_prominence_db"])
            self.w1 = z["w1"].astype(np.float32)
            self.b1 = z["b1"].astype(np.float32)
            self.w2 = z["w2"].astype(np.float32)
            self.b2 = float(z["b2"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = np.tanh(x @ self.w1 + self.b1) @ self.w2 + self.b2
        return 0.5 * (1.0 + np.tanh(0.5 * z))


def load_event_model(path: Path | None = None) -> _EventModel:
    """The shipped nucleus-event classifier (cached; loaded only when ``detector="events"``)."""
    return _cached_model(_EventModel, Path(path) if path is not None else EVENT_MODEL)


@dataclass(frozen=True)
class PaceSettings:
    """Settings of the syllable-rate estimator (units in the names)."""

    window_s: float = 20.0  # rolling window, in seconds of voiced speech
    min_voiced_s: float = 8.0  # below this much voiced speech the rate is None (CONTRACT)
    calibration: float = DEFAULT_CALIBRATION
    band_lo_hz: float = 300.0
    band_hi_hz: float = 2300.0
    # sub-band correlation envelope (Wang & Narayanan 2007): mean pairwise product of the
    # top ``top_bands`` of the sub-bands between ``subband_edges_hz``; 0 = plain band energy
    subband_edges_hz: tuple[float, ...] = (300.0, 500.0, 750.0, 1050.0, 1400.0, 1850.0, 2400.0, 3400.0)
    top_bands: int = 4
    smooth_frames: int = 3  # Hann FIR length over 10 ms frames (odd)
    min_dip_db: float = 2.5
    silence_threshold_db: float = 25.0  # peak must be within this of the reference level
    ref_percentile: float = 95.0
    ref_half_life_s: float = 10.0  # forgetting of the level histogram (voiced seconds; follows level steps)
    abs_floor_db: float = -75.0  # band level (dB re full-scale sine energy) below which nothing counts
    voicing_threshold: float = 0.40
    chunk_frames: int = 100  # internal analysis chunk, 1 s (fixed: blocking-independent results; amortises numpy overhead)
    # the events detector's internal chunk, 3 s: its per-chunk numpy work is larger (candidate
    # features), so a longer chunk keeps it within the CPU budget (0.73 → ~0.4 ms/s at 1 → 3 s)
    event_chunk_frames: int = 300
    timeline_step_s: float = 1.0
    record_nuclei: bool = False  # keep every nucleus time in ``nucleus_times_s`` (debug/benchmarks; grows)
    # "peaks": the de Jong & Wempe style peak picker above; "learned": the per-frame syllable
    # density of a tiny MLP on sub-band envelopes (NUCLEUS_MODEL, see _NucleusModel), summed over
    # active frames; "events": every envelope peak is a candidate, weighted by a classifier's
    # nucleus probability (EVENT_MODEL, see _EventModel; ignores smooth_frames and min_dip_db).
    # See the module docstring for the measured comparison.
    detector: str = "events"

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and self.min_voiced_s >= 0):
            raise ValueError("window_s must be > 0 and min_voiced_s >= 0")
        if not (0 < self.calibration < 10):
            raise ValueError("calibration must be in (0, 10)")
        if not (0 <= self.band_lo_hz < self.band_hi_hz <= SAMPLE_RATE_HZ / 2):
            raise ValueError("need 0 <= band_lo_hz < band_hi_hz <= 8000")
        if self.smooth_frames < 1 or self.smooth_frames % 2 == 0:
            raise ValueError("smooth_frames must be a positive odd number")
        if self.min_dip_db <= 0 or self.silence_threshold_db <= 0:
            raise ValueError("min_dip_db and silence_threshold_db must be > 0")
        if not (0 < self.ref_percentile < 100) or self.ref_half_life_s <= 0:
            raise ValueError("ref_percentile must be in (0, 100), ref_half_life_s > 0")
        if not (0 <= self.voicing_threshold < 1):
            raise ValueError("voicing_threshold must be in [0, 1)")
        if self.detector not in ("peaks", "learned", "events"):
            raise ValueError("detector must be 'peaks', 'learned' or 'events'")
        if self.chunk_frames < 1 or self.event_chunk_frames < 1 or self.timeline_step_s <= 0:
            raise ValueError("chunk_frames and event_chunk_frames must be >= 1, timeline_step_s > 0")


class SyllableRateEstimator:
    """Streaming syllable-nuclei counter for ONE party (see module docstring).

    ``process(frames, active)`` with ``frames`` (n, 160) float32 in [-1, 1] and ``active`` (n,)
    bool. Rates are calibrated syllables per second of active (voiced) speech.
    """

    def __init__(self, settings: PaceSettings | None = None, nucleus_model=None, event_model=None) -> None:
        s = settings if settings is not None else PaceSettings()
        self.settings = s
        self._model = None
        self._emodel = None
        if s.detector == "events":
            if s.top_bands < 2:
                raise ValueError("detector='events' needs the sub-band envelope (top_bands >= 2)")
            # any callable (k, EVENT_FEATURES) → (k,) probabilities with ``context`` (training passes a probe)
            self._emodel = event_model if event_model is not None else load_event_model()
        if s.detector == "learned":
            if s.top_bands < 2:
                raise ValueError("detector='learned' needs the sub-band envelope (top_bands >= 2)")
            # any callable (n, F) → (n,) with ``offsets``/``floor_db``/``context`` (training passes a probe)
            self._model = nucleus_model if nucleus_model is not None else load_nucleus_model()
        import scipy.fft  # lazy: float32 FFTs (numpy 1.x always computes in float64)

        self._rfft = scipy.fft.rfft
        self._irfft = scipy.fft.irfft
        self._h = s.smooth_frames // 2 if s.detector != "events" else 0  # events: the unsmoothed envelope
        self._chunk = s.chunk_frames if s.detector != "events" else s.event_chunk_frames
        self._kern = np.hanning(s.smooth_frames + 2)[1:-1]
        self._kern = self._kern / self._kern.sum()
        # raw frames kept: window needs k-1..k+1 where k lags the newest frame by h+1
        self._r = self._h + 4 if self._emodel is None else self._emodel.context + 5
        win_len = _WIN_FRAMES * FRAME_SAMPLES
        self._win = np.hanning(win_len + 2)[1:-1].astype(np.float32)
        freqs = np.fft.rfftfreq(_NFFT_E, 1.0 / SAMPLE_RATE_HZ)
        # energy of a full-scale sine in the band → 0 dB reference
        eref = float((self._win.astype(np.float64) ** 2).sum()) * _NFFT_E / 4.0
        if s.top_bands >= 2:
            edges = np.searchsorted(freqs, np.asarray(s.subband_edges_hz))
            self._lo, self._hi = int(edges[0]), int(edges[-1])
            nb = len(edges) - 1
            if not 2 <= s.top_bands <= nb:
                raise ValueError(f"top_bands must be in [2, {nb}] (or 0/1 for plain band energy)")
            # per-bin mean within each sub-band (bands are unequal), scaled to a band total
            w = np.zeros((self._hi - self._lo, nb))
            for b in range(nb):
                w[edges[b] - self._lo:edges[b + 1] - self._lo, b] = 1.0 / (edges[b + 1] - edges[b])
            self._bandmat = w * (self._hi - self._lo) / eref
        else:
            band = np.flatnonzero((freqs >= s.band_lo_hz) & (freqs <= s.band_hi_hz))
            self._lo, self._hi = int(band[0]), int(band[-1]) + 1
            self._bandmat = np.full((self._hi - self._lo, 1), 1.0 / eref)
        # window autocorrelation for Boersma's normalisation
        wpad = np.zeros(_NFFT)
        wpad[:win_len] = self._win
        rw = np.fft.irfft(np.abs(np.fft.rfft(wpad)) ** 2)
        self._lag0 = int(SAMPLE_RATE_HZ / _F0_MAX_HZ)
        self._lag1 = int(SAMPLE_RATE_HZ / _F0_MIN_HZ) + 1
        self._rw = (rw[self._lag0:self._lag1] / rw[0]).astype(np.float32)
        self._floor_e = 10.0 ** ((_HIST_LO_DB + 1.0) / 10.0)
        self._hist_decay = 0.5 ** (FRAME_S / s.ref_half_life_s)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget everything (start of a new call)."""
        s = self.settings
        self._pend = np.zeros((self._chunk, FRAME_SAMPLES), np.float32)
        self._pend_act = np.zeros(self._chunk, bool)
        self._npend = 0
        self._raw = np.zeros((self._r, FRAME_SAMPLES), np.float32)
        self._act = np.zeros(self._r, bool)
        self._e_hist = np.full(2 * self._h, self._floor_e)  # linear band energy, frames k-2h..k-1
        self._s_last = np.full(2, _HIST_LO_DB + 1.0)  # last two smoothed levels (dB)
        self._hist = np.zeros(_HIST_BINS)
        self._n_in = 0  # frames analysed (entered the analysis)
        self._n_out = 0  # call frames fully analysed (the analysis lags the input)
        self._n_end: float = math.inf  # stream length in frames, known after finish()
        self._voiced_frames = 0
        self._raw_count = 0
        # hysteresis peak picker
        self._mode = 0  # 0: looking for a rise, 1: holding a candidate peak
        self._vmin = _HIST_LO_DB + 1.0  # the stream starts from silence
        self._cand: tuple | None = None  # see _pick
        # rolling window: voiced-clock frame of each counted nucleus
        self._nuclei: deque[int] = deque()
        self.nucleus_times_s: list[float] = []
        self.candidate_times_s: list[float] = []  # detector="events" with record_nuclei: every candidate
        self._timeline: list[tuple[float, float]] = []
        self._next_tl_frame = int(round(s.timeline_step_s / FRAME_S))
        self._finished = False
        if self._model is not None:
            c = self._model.context
            nb = self._bandmat.shape[1]
            self._lsb_hist = np.full((2 * c, nb), _HIST_LO_DB + 1.0, np.float32)  # centres k-2C .. k-1
            self._lact_hist = np.zeros(c, bool)  # activity of the next C output centres
            self._mass = 0.5  # accumulated density (+0.5: nuclei are emitted at half-integers → rounding)
        if self._emodel is not None:
            c = self._emodel.context
            nb = self._bandmat.shape[1]
            self._mass = 0.5  # summed nucleus probabilities (+0.5: as for the learned detector)
            self._lev_hist = np.full(2 * c, _HIST_LO_DB + 1.0)  # envelope levels, centres k-2c .. k-1
            self._lsbe_hist = np.full((2 * c, nb), _HIST_LO_DB + 1.0)  # their sub-band levels
            self._acte_hist = np.zeros(2 * c, bool)

    # ------------------------------------------------------------------ public API
    @property
    def voiced_s(self) -> float:
        """Seconds of active (voiced) speech analysed so far."""
        return self._voiced_frames * FRAME_S

    @property
    def syllables(self) -> float:
        """Calibrated syllable count so far."""
        return self.raw_nuclei * self.settings.calibration

    @property
    def raw_nuclei(self) -> float:
        """Uncalibrated count (for calibration fitting): the number of nuclei with ``detector="peaks"``;
        with ``detector="learned"`` the summed density itself (fractional: rounding it to whole
        nuclei would add ±0.5 syllable of noise per utterance — on 2 s clips that is ~4 % of the rate)."""
        if self._model is not None or self._emodel is not None:
            return self._mass - 0.5
        return self._raw_count

    def process(self, frames: np.ndarray, active: np.ndarray) -> None:
        """Feed ``n`` frames (n, 160) and their activity flags (n,)."""
        frames = np.asarray(frames)
        active = np.asarray(active)
        if frames.ndim != 2 or frames.shape[1] != FRAME_SAMPLES:
            raise ValueError(f"frames must have shape (n, {FRAME_SAMPLES}), got {frames.shape}")
        if active.shape != (frames.shape[0],):
            raise ValueError("active must have shape (n,) matching frames")
        if self._finished:
            raise ValueError("process() after finish(): call reset() for a new call")
        n = frames.shape[0]
        k = self._chunk
        i = 0
        while i < n:
            take = min(k - self._npend, n - i)
            self._pend[self._npend:self._npend + take] = frames[i:i + take]
            self._pend_act[self._npend:self._npend + take] = active[i:i + take]
            self._npend += take
            i += take
            if self._npend == k:
                self._analyse(self._pend, self._pend_act)
                self._npend = 0

    def finish(self) -> None:
        """End of call: analyse buffered frames and flush the lookahead with silence."""
        if self._finished:
            return
        if self._npend:
            self._analyse(self._pend[:self._npend].copy(), self._pend_act[:self._npend].copy())
            self._npend = 0
        self._n_end = self._n_in
        # push the delayed analysis frames out with inactive silence (not counted as voiced)
        tail = 2 * self._h + 6
        if self._model is not None:
            tail = max(tail, self._model.context + 4)
        if self._emodel is not None:
            tail = self._emodel.context + 6
        self._analyse(np.zeros((tail, FRAME_SAMPLES), np.float32), np.zeros(tail, bool))
        self._finished = True

    def rolling_rate_syl_s(self) -> float | None:
        """Calibrated syllables/s over the last ``window_s`` of voiced speech (None if < min_voiced_s)."""
        return self._rolling()

    def call_rate_syl_s(self) -> float | None:
        """Calibrated syllables/s over the whole call (None if < min_voiced_s voiced)."""
        if self.voiced_s < self.settings.min_voiced_s or self._voiced_frames == 0:
            return None
        return self.syllables / self.voiced_s

    def timeline(self) -> list[tuple[float, float]]:
        """(t_s, rolling rate) every ``timeline_step_s`` of call time, where the rate is defined.

        ``t_s`` is call time of the analysed (delayed) frame.
        """
        return list(self._timeline)

    # ------------------------------------------------------------------ internals
    def _rolling(self) -> float | None:
        s = self.settings
        if self.voiced_s < s.min_voiced_s or self._voiced_frames == 0:
            return None
        win_frames = int(round(s.window_s / FRAME_S))
        lo = self._voiced_frames - win_frames
        nuc = self._nuclei
        while nuc and nuc[0] <= lo:
            nuc.popleft()
        span = min(self._voiced_frames, win_frames) * FRAME_S
        return len(nuc) * s.calibration / span

    def _analyse(self, new: np.ndarray, new_act: np.ndarray) -> None:
        s = self.settings
        n = new.shape[0]
        h = self._h
        r = self._r
        new = np.nan_to_num(new, nan=0.0, posinf=1.0, neginf=-1.0)  # corrupt input never poisons state
        raw = np.concatenate([self._raw, new])  # global frames n_in-r .. n_in+n-1
        act = np.concatenate([self._act, new_act])
        # 1. band energy of the window centred on frame g-1 for each new frame g (needs g)
        #    → energies for frames n_in-1 .. n_in+n-2 (one frame of lookahead)
        flat = raw[r - 3:].reshape(-1)  # frames n_in-3 .. n_in+n-1
        # window i covers frames n_in-3+i .. n_in-1+i, centre n_in-2+i (strided view, no copy)
        wins = np.lib.stride_tricks.sliding_window_view(flat, _WIN_FRAMES * FRAME_SAMPLES)[::FRAME_SAMPLES][:n]
        # Only windows within 2 frames of an active frame matter (nuclei count only in active
        # frames; smoothing and extrema look 1 frame each way): the rest are treated as silence
        # and skip the FFT, which roughly halves the cost for a party talking half of the call.
        need = np.lib.stride_tricks.sliding_window_view(act[r - 4:r + n], 5).any(axis=1)
        if self._model is not None:
            self._analyse_learned(raw, wins, need, act, n)
            return
        if self._emodel is not None:
            self._analyse_events(raw, wins, need, act, n)
            return
        e = np.full(n, self._floor_e)
        if need.any():
            rows = np.flatnonzero(need) if not need.all() else slice(None)
            sb = self._subband_power(wins[rows])
            if s.top_bands >= 2:
                m = s.top_bands
                sb.sort(axis=1)
                sb = sb[:, -m:]
                e[rows] = np.sqrt((sb.sum(axis=1) ** 2 - (sb**2).sum(axis=1)) / (m * (m - 1)))
            else:
                e[rows] = sb[:, 0]
        # energies for centres n_in-2 .. n_in+n-3; smoothing needs h more on both sides
        e_ext = np.concatenate([self._e_hist, e])  # centres n_in-2-2h .. n_in+n-3
        self._e_hist = e_ext[-2 * h:] if h else e_ext[:0]
        sm = np.convolve(e_ext, self._kern, mode="valid") if h else e_ext
        # smoothed levels for centres n_in-2-h .. n_in+n-3-h
        lev = 10.0 * np.log10(np.maximum(sm, self._floor_e))
        lev_ext = np.concatenate([self._s_last, lev])  # centres n_in-4-h .. n_in+n-3-h
        self._s_last = lev_ext[-2:]
        mid = lev_ext[1:-1]  # analysis frames k = n_in-3-h .. n_in+n-4-h
        prev = lev_ext[:-2]
        nxt = lev_ext[2:]
        k0 = self._n_in - 3 - h
        # activity of the analysis frames
        a_off = k0 - (self._n_in - r)  # index of k0 in act/raw
        act_k = act[a_off:a_off + n]
        # level reference histogram (active frames)
        self._hist *= self._hist_decay ** int(np.count_nonzero(act_k))
        if act_k.any():
            bins = np.clip(((mid[act_k] - _HIST_LO_DB) / _HIST_STEP_DB).astype(np.int64), 0, _HIST_BINS - 1)
            self._hist += np.bincount(bins, minlength=_HIST_BINS)
        ref = self._ref_level()
        thr = max(s.abs_floor_db, ref - s.silence_threshold_db) if ref is not None else s.abs_floor_db
        # local extrema
        is_max = (mid > prev) & (mid >= nxt)
        is_min = (mid < prev) & (mid <= nxt)
        ext = np.flatnonzero(is_max | is_min)
        if ext.size:
            counts = act_k & (mid >= thr)  # voicing is checked only for confirmed peaks (below)
            cum_v = self._voiced_frames + np.cumsum(act_k)
            self._pick(ext, is_max, mid, counts, cum_v, k0, raw, a_off)
        # bookkeeping
        nv = int(np.count_nonzero(act_k))
        self._voiced_frames += nv
        self._n_out = max(0, int(min(k0 + n, self._n_end)))
        self._n_in += n
        self._finish_chunk(raw, act)

    def _finish_chunk(self, raw: np.ndarray, act: np.ndarray) -> None:
        r = self._r
        self._raw = raw[-r:].copy()
        self._act = act[-r:].copy()
        # timeline (rolling rate at chunk granularity, sampled on the step grid)
        step = int(round(self.settings.timeline_step_s / FRAME_S))
        while self._next_tl_frame <= self._n_out:
            rate = self._rolling()
            if rate is not None:
                self._timeline.append((round(self._next_tl_frame * FRAME_S, 3), rate))
            self._next_tl_frame += step

    def _subband_power(self, wins: np.ndarray) -> np.ndarray:
        """(m, window) frames → (m, bands) sub-band powers (Hann window, float32 FFT, band matrix)."""
        spec = self._rfft(wins * self._win, _NFFT_E, axis=1)[:, self._lo:self._hi]
        return (spec.real**2 + spec.imag**2) @ self._bandmat

    def subband_levels_db(self, wins: np.ndarray) -> np.ndarray:
        """(m, window) frames → (m, bands) sub-band levels in dB (floored): the learned detector's
        input, here and in its training (``pacelight_train.syllables``)."""
        return 10.0 * np.log10(np.maximum(self._subband_power(wins), self._floor_e))

    def _analyse_learned(self, raw: np.ndarray, wins: np.ndarray, need: np.ndarray, act: np.ndarray,
                         n: int) -> None:
        """Learned detector: per-frame density from sub-band levels, summed over active frames.

        Sub-band levels exist for centres n_in-2 .. n_in+n-3 (frames away from activity are
        silence, as for the peak picker); the density of centre k needs ±C frames of context, so
        the output centres are n_in-2-C .. n_in+n-3-C. A nucleus is emitted whenever the running
        density sum crosses a half-integer (so the count is the rounded mass and the rolling
        window, timeline and ``nucleus_times_s`` work exactly as with the peak picker).
        """
        s = self.settings
        r = self._r
        model = self._model
        c = model.context
        lsb = np.full((n, self._bandmat.shape[1]), _HIST_LO_DB + 1.0, np.float32)
        if need.any():
            rows = np.flatnonzero(need) if not need.all() else slice(None)
            lsb[rows] = self.subband_levels_db(wins[rows])
        ext = np.concatenate([self._lsb_hist, lsb])  # centres n_in-2-2C .. n_in+n-3
        self._lsb_hist = ext[-2 * c:]
        act_c = np.concatenate([self._lact_hist, act[r - 2:r - 2 + n]])  # centres n_in-2-C ..
        self._lact_hist = act_c[-c:]
        act_o = act_c[:n]  # output centres n_in-2-C .. n_in+n-3-C
        k0 = self._n_in - 2 - c
        nv = int(np.count_nonzero(act_o))
        if nv:
            x, ref = nucleus_features(ext, model.offsets, model.floor_db)
            d = model(x) * (act_o & (ref >= s.abs_floor_db))  # nothing counts in silence
            self._emit_mass(d, np.arange(n), act_o, k0)
        self._voiced_frames += nv
        self._n_out = max(0, int(min(k0 + n, self._n_end)))
        self._n_in += n
        self._finish_chunk(raw, act)

    def _analyse_events(self, raw: np.ndarray, wins: np.ndarray, need: np.ndarray, act: np.ndarray,
                        n: int) -> None:
        """Event detector: candidate nuclei (every local maximum of the smoothed envelope in an active
        frame above the level threshold), each weighted by the classifier's nucleus probability.

        Sub-band powers exist for centres n_in-2 .. n_in+n-3, smoothed levels for centres
        n_in-2-h .. n_in+n-3-h; a candidate needs ±c frames of context, so this chunk's candidates are
        at centres n_in-2-h-c .. n_in+n-3-h-c. Nuclei are emitted whenever the running probability sum
        crosses a half-integer (as for the learned detector).
        """
        s = self.settings
        r = self._r
        model = self._emodel
        c = model.context
        nb = self._bandmat.shape[1]
        sb = np.full((n, nb), self._floor_e)
        if need.any():
            rows = np.flatnonzero(need) if not need.all() else slice(None)
            sb[rows] = self._subband_power(wins[rows])
        lsb = 10.0 * np.log10(np.maximum(sb, self._floor_e))
        m = s.top_bands
        top = np.sort(sb, axis=1)[:, -m:]
        e = np.sqrt(np.maximum(top.sum(axis=1) ** 2 - (top**2).sum(axis=1), 0.0) / (m * (m - 1)))
        lev = 10.0 * np.log10(np.maximum(e, self._floor_e))  # centres n_in-2 .. n_in+n-3 (no smoothing)
        lev_ext = np.concatenate([self._lev_hist, lev])  # centres n_in-2-2c .. n_in+n-3
        self._lev_hist = lev_ext[-2 * c:]
        lsb_ext = np.concatenate([self._lsbe_hist, lsb])
        self._lsbe_hist = lsb_ext[-2 * c:]
        act_ext = np.concatenate([self._acte_hist, act[r - 2:r - 2 + n]])
        self._acte_hist = act_ext[-2 * c:]
        k0 = self._n_in - 2 - c  # frame of output index c
        mid = lev_ext[c:c + n]
        act_o = act_ext[c:c + n]
        nv = int(np.count_nonzero(act_o))
        self._hist *= self._hist_decay ** nv
        if nv:
            bins = np.clip(((mid[act_o] - _HIST_LO_DB) / _HIST_STEP_DB).astype(np.int64), 0, _HIST_BINS - 1)
            self._hist += np.bincount(bins, minlength=_HIST_BINS)
            ref = self._ref_level()
            thr = max(s.abs_floor_db, ref - s.silence_threshold_db) if ref is not None else s.abs_floor_db
            i = c + np.flatnonzero((mid > lev_ext[c - 1:c - 1 + n]) & (mid >= lev_ext[c + 1:c + 1 + n])
                                   & act_o & (mid >= thr))
            if i.size:  # features first; voicing (the costly one) only for candidates that stay
                x = event_features(lev_ext, lsb_ext, act_ext, i, np.zeros(i.size), float(ref), c)
                keep = np.minimum(x[:, 2], x[:, 3]) * 10.0 >= model.min_prominence_db
                i, x = i[keep], x[keep]
            if i.size:
                x[:, 11] = self._voicing(raw, r - 2 - c + (i - c))
                p = np.asarray(model(x), np.float64)
                if s.record_nuclei:
                    self.candidate_times_s.extend(np.round((k0 + i - c) * FRAME_S, 3).tolist())
                self._emit_mass(p, i - c, act_o, k0)
        self._voiced_frames += nv
        self._n_out = max(0, int(min(k0 + n, self._n_end)))
        self._n_in += n
        self._finish_chunk(raw, act)

    def _emit_mass(self, mass: np.ndarray, pos: np.ndarray, act_o: np.ndarray, k0: int) -> None:
        """Add fractional nucleus ``mass`` (learned / events detectors) at output frames ``pos`` of
        this chunk (frame ``k0 + pos``): a whole nucleus is emitted — rolling window, timeline,
        ``nucleus_times_s`` — each time the running total (started at 0.5) crosses an integer, i.e.
        the summed mass a half-integer."""
        cum = self._mass + np.cumsum(mass)
        steps = np.diff(np.floor(np.concatenate([[self._mass], cum]))).astype(np.int64)
        self._mass = float(cum[-1])
        j = np.repeat(pos, steps)
        if j.size:
            cum_v = self._voiced_frames + np.cumsum(act_o)
            self._raw_count += int(j.size)
            self._nuclei.extend(cum_v[j].tolist())
            if self.settings.record_nuclei:
                self.nucleus_times_s.extend(np.round((k0 + j) * FRAME_S, 3).tolist())

    def _ref_level(self) -> float | None:
        tot = self._hist.sum()
        if tot <= 0:
            return None
        c = np.cumsum(self._hist)
        i = int(np.searchsorted(c, tot * self.settings.ref_percentile / 100.0))
        return _HIST_LO_DB + (i + 0.5) * _HIST_STEP_DB

    def _voicing(self, raw: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Max normalised autocorrelation (70–400 Hz) of the 30 ms window centred on each frame."""
        fl = FRAME_SAMPLES
        flat = raw.reshape(-1)
        idx = ((pos - 1) * fl)[:, None] + np.arange(_WIN_FRAMES * fl)[None, :]
        x = flat[idx]
        x = (x - x.mean(axis=1, keepdims=True)) * self._win
        sp = self._rfft(x, _NFFT, axis=1)  # float32
        ac = self._irfft(sp.real**2 + sp.imag**2, _NFFT, axis=1)
        r0 = ac[:, :1]
        ok = r0[:, 0] > 1e-12
        rn = ac[:, self._lag0:self._lag1] / np.where(r0 > 1e-12, r0, 1.0) / self._rw
        out = np.where(ok, rn.max(axis=1), 0.0)
        return np.minimum(out, 1.0)

    def _pick(self, ext: np.ndarray, is_max: np.ndarray, lev: np.ndarray, counts: np.ndarray,
              cum_v: np.ndarray, k0: int, raw: np.ndarray, a_off: int) -> None:
        """Hysteresis peak picker over the chunk's extrema (a Python loop over ~10 extrema/s).

        A candidate is (level dB, voiced clock, passes level/activity, frame, voiced?, chunk index).
        Voicing does not influence the picking, so it is computed afterwards, in one batch, only
        for the peaks confirmed in this chunk and for a candidate still open at the chunk's end.
        """
        dip = self.settings.min_dip_db
        mode, vmin, cand = self._mode, self._vmin, self._cand
        confirmed = []
        for j in ext.tolist():
            v = float(lev[j])
            if is_max[j]:
                if mode == 0:
                    if v >= vmin + dip:
                        mode, cand = 1, (v, int(cum_v[j]), bool(counts[j]), k0 + j, None, j)
                elif cand is not None and v > cand[0]:
                    cand = (v, int(cum_v[j]), bool(counts[j]), k0 + j, None, j)
            else:
                if mode == 0:
                    vmin = min(vmin, v)
                elif cand is not None and v <= cand[0] - dip:
                    if cand[2]:
                        confirmed.append(cand)
                    mode, vmin, cand = 0, v, None
        need = [c[5] for c in confirmed if c[4] is None]
        if cand is not None and cand[2] and cand[4] is None:
            need.append(cand[5])
        voiced: dict[int, bool] = {}
        if need:
            vals = self._voicing(raw, a_off + np.asarray(need)) >= self.settings.voicing_threshold
            voiced = dict(zip(need, vals.tolist(), strict=True))
        for c in confirmed:
            if (c[4] if c[4] is not None else voiced[c[5]]):
                self._raw_count += 1
                self._nuclei.append(c[1])
                if self.settings.record_nuclei:
                    self.nucleus_times_s.append(round(c[3] * FRAME_S, 3))
        if cand is not None and cand[2] and cand[4] is None:
            cand = (*cand[:4], voiced[cand[5]], -1)
        self._mode, self._vmin, self._cand = mode, vmin, cand


def _energy_activity(frames: np.ndarray) -> np.ndarray:
    """Simple offline activity for :func:`estimate_rate` when none is given.

    A frame is active when its RMS level exceeds max(-55 dBFS, 95th-percentile frame level − 30 dB);
    inactive gaps shorter than 0.2 s between active frames are bridged (CONTRACT talk rule) and
    isolated active runs shorter than 30 ms are dropped.
    """
    if frames.shape[0] == 0:
        return np.zeros(0, bool)
    db = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    thr = max(-55.0, float(np.percentile(db, 95)) - 30.0)
    act = db > thr
    act = _fill_runs(act, False, int(round(0.2 / FRAME_S)), interior_only=True)
    act = _fill_runs(act, True, 3, interior_only=False)
    return act


def _fill_runs(mask: np.ndarray, value: bool, max_len: int, interior_only: bool) -> np.ndarray:
    """Flip runs of ``value`` shorter than ``max_len`` frames (vectorised)."""
    m = mask.copy()
    x = np.concatenate([[not value], m == value, [not value]]).astype(np.int8)
    d = np.diff(x)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):  # per run, not per sample
        if b - a < max_len and (not interior_only or (a > 0 and b < m.size)):
            m[a:b] = not value
    return m


def frames_from_signal(signal_16k: np.ndarray) -> np.ndarray:
    """Cut a mono 16 kHz signal into (n, 160) float32 frames (last frame zero-padded)."""
    x = np.asarray(signal_16k, dtype=np.float32).reshape(-1)
    n = -(-x.size // FRAME_SAMPLES)
    out = np.zeros(n * FRAME_SAMPLES, np.float32)
    out[:x.size] = x
    return out.reshape(n, FRAME_SAMPLES)


def run_estimator(frames: np.ndarray, active: np.ndarray, settings: PaceSettings | None = None,
                  block_frames: int = 5) -> SyllableRateEstimator:
    """Feed frames through a fresh estimator in blocks (as the pipeline does) and finish it."""
    est = SyllableRateEstimator(settings)
    for i in range(0, frames.shape[0], block_frames):
        est.process(frames[i:i + block_frames], active[i:i + block_frames])
    est.finish()
    return est


def estimate_rate(signal_16k: np.ndarray, active: np.ndarray | None = None,
                  settings: PaceSettings | None = None) -> tuple[float | None, float, float]:
    """Offline pace of one speaker: ``(rate syl/s or None, calibrated syllables, voiced_s)``.

    Runs the same streaming :class:`SyllableRateEstimator` in 5-frame blocks. ``active`` is a
    per-frame (10 ms) bool mask; when None, :func:`_energy_activity` is used (energy threshold
    with 0.2 s bridging).
    """
    frames = frames_from_signal(signal_16k)
    if active is None:
        active = _energy_activity(frames)
    active = np.asarray(active, bool)
    if active.shape != (frames.shape[0],):
        raise ValueError(f"active must have one flag per 10 ms frame ({frames.shape[0]})")
    est = run_estimator(frames, active, settings)
    return est.call_rate_syl_s(), est.syllables, est.voiced_s
