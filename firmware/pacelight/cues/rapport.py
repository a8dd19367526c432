"""Rapport cues: the agent's pace and energy relative to the CUSTOMER, not only to a fixed norm.

Pure and streaming (one instance per call, fed by :class:`~pacelight.cues.engine.CueEngine` with
every 50 ms :class:`~pacelight.events.Observation`). No I/O, no clock, constant memory.

* **Customer-relative pace target** (:func:`customer_relative_target_syl_s`): while the customer
  has ≥ ``customer_min_voiced_s`` (8 s) of voiced speech in the last ``customer_window_s`` (60 s)
  of call time, the agent's target moves ``follow`` (default: all the way) from the norm toward
  the customer's pace over that window, bounded to ``[target_min_of_norm, target_max_of_norm]``
  (80 %..110 %) × the norm. Otherwise the norm applies (``Observation.agent_pace_target_syl_s``:
  the language norm, or the per-agent norm of :mod:`pacelight.pace.targets`). The customer's
  60 s window is derived here from the pace estimator's cumulative counters
  (``Observation.customer_voiced_total_s`` / ``customer_syllables_total``), so the estimator
  needs no second rolling window.
* **Pace mismatch**: agent rolling pace ≥ ``pace_on_ratio`` (1.25) × effective target, sustained
  ``pace_sustain_s`` (8 s); off at ≤ ``pace_off_ratio``. The cue engine adds hysteresis,
  refractory period, rate limit, quiet start and deferral to the agent's next pause.
* **Energy** (acoustic arousal — loudness, pitch and tempo as the tone model hears them, NOT an
  emotion judgement): each party's arousal is the time-weighted mean of its fresh tone scores over
  the last ``arousal_window_s`` (the other party's turns do not erase it; silence longer than the
  window does). ``calm``: customer ≥ ``energy_high`` and agent ≥ ``energy_high`` sustained
  ``energy_calm_sustain_s`` (CueSettings, 10 s). ``more-energy`` (off by default): agent ≤
  ``arousal_low`` while the customer is above it, sustained ``energy_more_sustain_s``.
* **Per-call figures** (:meth:`RapportTracker.summary`): median agent/customer pace ratio over
  call time, share of time in pace mismatch, share of time the target followed the customer,
  energy-cue counts (summary ``rapport`` section, docs/summary-extensions.md).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields

import numpy as np

from pacelight.errors import ConfigError
from pacelight.frames import BLOCK_FRAMES, FRAME_S

# Log2 pace-ratio histogram for the constant-memory median: 1/100 octave bins over 1/8 .. 8.
_RATIO_BIN = 0.01
_RATIO_LO_LOG2 = -3.0
_RATIO_BINS = 600
_SNAPSHOT_S = 1.0  # customer-window snapshots once per second of call time
_MAX_DT_S = 0.5  # a gap in the observation stream counts at most this much time


@dataclass(frozen=True, slots=True)
class RapportSettings:
    """Customer-relative pace and energy settings (seconds, ratios, arousal scores 0..1)."""

    enabled: bool = True
    customer_window_s: float = 60.0
    customer_min_voiced_s: float = 8.0
    follow: float = 1.0  # 0 = ignore the customer, 1 = target = customer pace (within bounds)
    target_min_of_norm: float = 0.80
    target_max_of_norm: float = 1.10
    pace_on_ratio: float = 1.25
    pace_off_ratio: float = 1.12
    pace_sustain_s: float = 8.0
    arousal_window_s: float = 12.0
    # Smoothed arousal score that counts as "high" for the calm cue. It is on the tone model's score
    # scale, so it is calibrated per shipped model with benchmarks/rapport_cues.py (energy scenarios,
    # seeds 1000-1014): tone-cnn-int8 1.1.0 and 1.3.0 -> 0.65 (the DS-CNN 1.0.0 used 0.55).
    energy_high: float = 0.65

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not (v >= 0.0 and math.isfinite(v)):
                raise ConfigError(f"rapport setting {f.name} must be a finite number >= 0, got {v!r}")
        if not 0.0 <= self.follow <= 1.0:
            raise ConfigError("rapport setting follow must be within 0..1")
        if not 0.5 <= self.target_min_of_norm <= 1.0 <= self.target_max_of_norm <= 1.5:
            raise ConfigError("rapport target bounds need 0.5 <= target_min_of_norm <= 1 <= target_max_of_norm <= 1.5")
        if not 1.0 <= self.pace_off_ratio < self.pace_on_ratio:
            raise ConfigError("rapport setting pace_off_ratio must be in [1, pace_on_ratio) (hysteresis)")
        if not 0.0 < self.customer_min_voiced_s <= self.customer_window_s:
            raise ConfigError("rapport setting customer_min_voiced_s must be in (0, customer_window_s]")
        if not 1.0 <= self.arousal_window_s <= 120.0:
            raise ConfigError("rapport setting arousal_window_s must be within 1..120 s")
        if not 0.0 < self.energy_high <= 1.0:
            raise ConfigError("rapport setting energy_high must be within (0, 1]")

    @classmethod
    def from_mapping(cls, values: dict[str, object]) -> RapportSettings:
        """Build from config values; unknown keys are rejected."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown rapport settings: {sorted(unknown)}")
        return cls(**values)  # type: ignore[arg-type]


def customer_relative_target_syl_s(norm_syl_s: float | None, customer_syl_s: float | None,
                                   customer_voiced_s: float, settings: RapportSettings | None = None
                                   ) -> tuple[float | None, bool]:
    """The agent's effective pace target and whether it follows the customer.

    ``norm_syl_s``: the language or per-agent norm; ``customer_syl_s``/``customer_voiced_s``: the
    customer's pace and voiced seconds over the last ``customer_window_s``. Falls back to the norm
    (``follows=False``) when the customer has spoken less than ``customer_min_voiced_s`` there.
    """
    s = settings or RapportSettings()
    if norm_syl_s is None or not norm_syl_s > 0:
        return None, False
    if (not s.enabled or customer_syl_s is None or not customer_syl_s > 0
            or customer_voiced_s < s.customer_min_voiced_s - 1e-9):
        return float(norm_syl_s), False
    t = norm_syl_s + s.follow * (customer_syl_s - norm_syl_s)
    lo, hi = norm_syl_s * s.target_min_of_norm, norm_syl_s * s.target_max_of_norm
    return float(min(max(t, lo), hi)), True


class CustomerPaceWindow:
    """The customer's pace over the last ``window_s`` of CALL time from cumulative counters.

    ``update(t_s, voiced_total_s, syllables_total)`` with the pace estimator's running totals
    (they only grow); one snapshot per second is kept (constant memory: window_s + 2 entries).
    """

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = float(window_s)
        self._snaps: deque[tuple[float, float, float]] = deque()
        self._now: tuple[float, float, float] | None = None

    def update(self, t_s: float, voiced_total_s: float, syllables_total: float) -> None:
        now = (float(t_s), float(voiced_total_s), float(syllables_total))
        self._now = now
        if not self._snaps or t_s - self._snaps[-1][0] >= _SNAPSHOT_S - 1e-9:
            self._snaps.append(now)
        # keep exactly one snapshot at or before the window start
        while len(self._snaps) >= 2 and self._snaps[1][0] <= t_s - self.window_s + 1e-9:
            self._snaps.popleft()

    def _base(self) -> tuple[float, float, float] | None:
        if self._now is None or not self._snaps:
            return None
        first = self._snaps[0]
        if first[0] <= self._now[0] - self.window_s + 1e-9:
            return first
        return (0.0, 0.0, 0.0)  # the call is younger than the window: count from its start

    def voiced_s(self) -> float:
        """Customer voiced seconds in the window."""
        b = self._base()
        return 0.0 if b is None or self._now is None else max(0.0, self._now[1] - b[1])

    def rate_syl_s(self) -> float | None:
        """Syllables per voiced second in the window (None without voiced speech there)."""
        b = self._base()
        if b is None or self._now is None:
            return None
        dv = self._now[1] - b[1]
        return (self._now[2] - b[2]) / dv if dv > 1e-6 else None


class ArousalLevel:
    """Time-weighted mean of one party's fresh arousal scores over the last ``window_s``.

    Observations arrive every 50 ms with the latest tone score (None when stale); each contributes
    its block duration. None when the window holds no known score (the party has been silent
    longer than the window). Constant memory (one entry per block in the window).
    """

    def __init__(self, window_s: float = 12.0) -> None:
        self.window_s = float(window_s)
        self._q: deque[tuple[float, float, float]] = deque()  # (t, dt, score)
        self._sw = 0.0
        self._w = 0.0

    def update(self, t_s: float, dt_s: float, score: float | None) -> float | None:
        if score is not None and math.isfinite(score) and dt_s > 0:
            self._q.append((t_s, dt_s, float(score)))
            self._sw += dt_s * float(score)
            self._w += dt_s
        while self._q and self._q[0][0] <= t_s - self.window_s + 1e-9:
            _, dt, sc = self._q.popleft()
            self._sw -= dt * sc
            self._w -= dt
        if not self._q:
            self._sw = self._w = 0.0
            return None
        return min(1.0, max(0.0, self._sw / self._w)) if self._w > 1e-9 else None


@dataclass(frozen=True, slots=True)
class RapportState:
    """What the rapport tracker derived from one observation."""

    target_syl_s: float | None  # effective agent pace target (customer-relative or the norm)
    follows_customer: bool
    customer_window_syl_s: float | None
    customer_window_voiced_s: float
    agent_arousal: float | None  # smoothed (window mean)
    customer_arousal: float | None


class RapportTracker:
    """Per-call rapport state: effective pace target, smoothed arousal, per-call figures."""

    def __init__(self, settings: RapportSettings | None = None) -> None:
        self.settings = settings or RapportSettings()
        s = self.settings
        self._window = CustomerPaceWindow(s.customer_window_s)
        self._arousal = (ArousalLevel(s.arousal_window_s), ArousalLevel(s.arousal_window_s))
        self._ratio_hist = np.zeros(_RATIO_BINS, dtype=np.float64)
        self._last_t: float | None = None
        self._both_pace_s = 0.0
        self._agent_pace_s = 0.0
        self._mismatch_s = 0.0
        self._follow_s = 0.0
        self._energy_onsets: dict[str, int] = {"calm": 0, "more-energy": 0}
        self.state = RapportState(None, False, None, 0.0, None, None)

    def update(self, obs) -> RapportState:  # obs: pacelight.events.Observation
        s = self.settings
        t = float(obs.t_s)
        dt = BLOCK_FRAMES * FRAME_S if self._last_t is None else min(max(t - self._last_t, 0.0), _MAX_DT_S)
        self._last_t = t
        vt = getattr(obs, "customer_voiced_total_s", None)
        st = getattr(obs, "customer_syllables_total", None)
        if vt is not None and st is not None:
            self._window.update(t, vt, st)
        cw_rate, cw_voiced = self._window.rate_syl_s(), self._window.voiced_s()
        target, follows = customer_relative_target_syl_s(obs.agent_pace_target_syl_s, cw_rate, cw_voiced, s)
        aa = self._arousal[0].update(t, dt, obs.agent_arousal)
        ca = self._arousal[1].update(t, dt, obs.customer_arousal)
        self.state = RapportState(target, follows, cw_rate, cw_voiced, aa, ca)
        # per-call figures (time-weighted)
        ap, cp = obs.agent_pace_syl_s, obs.customer_pace_syl_s
        if ap is not None and target is not None and dt > 0:
            self._agent_pace_s += dt
            if ap >= s.pace_on_ratio * target - 1e-9:
                self._mismatch_s += dt
            if follows:
                self._follow_s += dt
        if ap is not None and cp is not None and ap > 0 and cp > 0 and dt > 0:
            k = int((math.log2(ap / cp) - _RATIO_LO_LOG2) / _RATIO_BIN)
            self._ratio_hist[min(max(k, 0), _RATIO_BINS - 1)] += dt
            self._both_pace_s += dt
        return self.state

    def record_energy_onset(self, detail: str) -> None:
        if detail in self._energy_onsets:
            self._energy_onsets[detail] += 1

    def pace_ratio_median(self) -> float | None:
        """Median over call time of agent/customer rolling pace (None if never both known)."""
        total = float(self._ratio_hist.sum())
        if total <= 0:
            return None
        k = int(np.searchsorted(np.cumsum(self._ratio_hist), total / 2.0))
        return float(2.0 ** (_RATIO_LO_LOG2 + (k + 0.5) * _RATIO_BIN))

    def summary(self) -> dict[str, object]:
        """The summary's ``rapport`` section (docs/summary-extensions.md)."""
        med = self.pace_ratio_median()
        ap = self._agent_pace_s
        return {
            "pace_ratio_median": None if med is None else round(med, 3),
            "pace_ratio_s": round(self._both_pace_s, 2),
            "pace_mismatch_share": round(self._mismatch_s / ap, 4) if ap > 0 else None,
            "target_follows_customer_share": round(self._follow_s / ap, 4) if ap > 0 else None,
            "energy_calm_cues": self._energy_onsets["calm"],
            "energy_more_cues": self._energy_onsets["more-energy"],
        }
