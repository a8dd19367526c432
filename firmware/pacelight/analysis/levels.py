"""Constant-memory running level statistics on the frame clock.

A decaying histogram of frame levels (dB) answers running percentile queries — the noise floor
(a low percentile of all frames), a party's speech level (a high percentile of its speech frames)
and the cross-channel leak gain — with memory independent of call length.
"""

from __future__ import annotations

import numpy as np

from pacelight.frames import FRAME_S


class DecayingHistogram:
    """Histogram of dB values with exponential forgetting (time constant in seconds of frames)."""

    def __init__(self, lo_db: float, hi_db: float, step_db: float, time_constant_s: float) -> None:
        self.lo_db = lo_db
        self.step_db = step_db
        self.n_bins = int(round((hi_db - lo_db) / step_db)) + 1
        self.counts = np.zeros(self.n_bins, dtype=np.float64)
        self.decay_per_frame = float(np.exp(-FRAME_S / time_constant_s))
        self.total_added = 0
        self._cache: dict[float, float | None] = {}  # plain percentiles since the last change

    def add(self, values_db: np.ndarray, n_frames: int) -> None:
        """Age the histogram by ``n_frames`` and add ``values_db`` (any subset of those frames)."""
        if n_frames:
            self.counts *= self.decay_per_frame**n_frames
            self._cache.clear()
        if len(values_db):
            idx = ((values_db - self.lo_db) / self.step_db).astype(np.int64)
            idx = np.minimum(np.maximum(idx, 0), self.n_bins - 1)  # np.clip, without its overhead
            self.counts += np.bincount(idx, minlength=self.n_bins)
            self.total_added += len(values_db)
            self._cache.clear()

    def weight(self) -> float:
        return float(self.counts.sum())

    def percentile(self, q: float, lo_db: float | None = None, hi_db: float | None = None) -> float | None:
        """The ``q`` (0..1) percentile in dB (optionally of the values within [lo_db, hi_db]),
        or None when empty."""
        if lo_db is None and hi_db is None:
            if q not in self._cache:
                self._cache[q] = self._percentile(q, None, None)
            return self._cache[q]
        return self._percentile(q, lo_db, hi_db)

    def _percentile(self, q: float, lo_db: float | None, hi_db: float | None) -> float | None:
        counts = self.counts
        first = 0
        if lo_db is not None or hi_db is not None:
            first = 0 if lo_db is None else max(0, int((lo_db - self.lo_db) / self.step_db))
            last = self.n_bins if hi_db is None else min(self.n_bins, int((hi_db - self.lo_db) / self.step_db) + 1)
            counts = counts[first:last]
        total = counts.sum()
        if total <= 0:
            return None
        k = int(np.searchsorted(np.cumsum(counts), q * total))
        return self.lo_db + (first + min(k, len(counts) - 1)) * self.step_db


class DecayingHistograms:
    """``n_series`` decaying histograms side by side (e.g. one per frequency band), vectorised."""

    def __init__(self, n_series: int, lo_db: float, hi_db: float, step_db: float, time_constant_s: float) -> None:
        self.lo_db = lo_db
        self.step_db = step_db
        self.n_series = n_series
        self.n_bins = int(round((hi_db - lo_db) / step_db)) + 1
        self.counts = np.zeros((n_series, self.n_bins), dtype=np.float64)
        self.decay_per_frame = float(np.exp(-FRAME_S / time_constant_s))
        self._offsets = (np.arange(n_series) * self.n_bins)[None, :]

    def add(self, values_db: np.ndarray, n_frames: int) -> None:
        """Age by ``n_frames`` and add ``values_db`` of shape (m, n_series)."""
        self.counts *= self.decay_per_frame**n_frames
        if len(values_db):
            idx = np.clip(((values_db - self.lo_db) / self.step_db).astype(np.int64), 0, self.n_bins - 1)
            flat = np.bincount((idx + self._offsets).ravel(), minlength=self.counts.size)
            self.counts += flat.reshape(self.counts.shape)

    def percentile(self, q: float) -> np.ndarray | None:
        """The ``q`` (0..1) percentile of each series in dB (None while any series is empty)."""
        total = self.counts.sum(axis=1)
        if np.any(total <= 0):
            return None
        cum = np.cumsum(self.counts, axis=1)
        k = np.minimum((cum < (q * total)[:, None]).sum(axis=1), self.n_bins - 1)
        return self.lo_db + k * self.step_db
