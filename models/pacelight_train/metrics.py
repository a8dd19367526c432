"""Clip-level metrics shared by training and the benchmark (numpy/scipy only)."""

from __future__ import annotations

import numpy as np


def score_from_probs(p: np.ndarray) -> np.ndarray:
    """Arousal score 0..1 from (…, 3) class probabilities low/neutral/high: P(high) + ½ P(neutral)."""
    p = np.asarray(p, np.float64)
    return np.clip(p[..., 2] + 0.5 * p[..., 1], 0.0, 1.0)


def uar(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 3) -> float:
    """Unweighted average recall over the classes present in y_true."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    recalls = [float(np.mean(y_pred[y_true == k] == k)) for k in range(n_classes) if np.any(y_true == k)]
    return float(np.mean(recalls)) if recalls else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def clip_probs(window_probs: np.ndarray, clip_idx: np.ndarray, n_clips: int) -> np.ndarray:
    """Mean of window probabilities per clip → (n_clips, 3)."""
    out = np.zeros((n_clips, window_probs.shape[1]))
    np.add.at(out, clip_idx, window_probs)
    cnt = np.bincount(clip_idx, minlength=n_clips)[:, None]
    return out / np.maximum(cnt, 1)


def summarize(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = probs.argmax(axis=1)
    return {"n": int(len(y)), "uar": uar(y, pred), "acc": float(np.mean(pred == y)),
            "spearman": spearman(score_from_probs(probs), y)}


def grouped_summary(clips, probs: np.ndarray) -> dict[str, dict[str, float]]:
    """:func:`summarize` overall, per corpus and per corpus/sex (clips with ``label``, ``corpus``, ``sex``)."""
    y = np.array([c.label for c in clips])
    groups = {"all": np.ones(len(clips), bool)}
    for corpus in ("emodb", "ravdess"):
        groups[corpus] = np.array([c.corpus == corpus for c in clips])
        for sex in ("female", "male"):
            groups[f"{corpus}/{sex}"] = np.array([c.corpus == corpus and c.sex == sex for c in clips])
    return {g: summarize(probs[m], y[m]) for g, m in groups.items() if m.any()}
