"""The cue engine: decides which single LED cue the agent sees, sparsely and calmly.

Pure and streaming: :meth:`CueEngine.update` is called with one :class:`~pacelight.events.Observation`
after every 50 ms analysis block and returns the :class:`~pacelight.events.CueChange` events of that
block (usually none). No I/O, no clock: time is ``Observation.t_s``.

Rules (defaults in :class:`CueSettings`):

* **Kinds and priority**: overtalk > monologue > pace > energy. One cue is shown at a time; a
  higher-priority cue preempts a lower one (the lower one goes off and its refractory period
  starts; it is not resumed automatically). Overtalk preempts at once; a non-urgent cue preempts
  only after the shown cue's minimum on-time.
* **Quiet periods**: no onset in the first ``quiet_start_s`` of a call, none while ``on_hold``
  (a cue that is on when a hold starts goes off at once).
* **Sparsity**: at most ``max_onsets_per_window`` onsets (all kinds together) in any rolling
  ``rate_window_s``; after a cue of a kind goes off, that kind stays quiet for its refractory
  period. A shown cue stays on at least ``min_on_s`` and (non-urgent kinds) at most ``max_on_s``.
* **Overtalk** (urgent, shown as soon as decided): the AGENT talking over the customer. An overlap
  the agent started is cued once it lasts ``overtalk_detect_s`` (1.0 s: shorter overlaps are
  backchannels such as "mm-hm"), so the cue appears ≤ 1.05 s after the overlap starts. When the
  CUSTOMER starts the overlap (an interruption by the customer), the agent is not at fault: the
  right reaction is to yield, and most agents do within a second or two. Only if the agent keeps
  talking over the customer for ``overtalk_customer_started_s`` (3.0 s) is it cued as overtalk.
* **Monologue**: the agent has held the floor ≥ ``monologue_on_s``; off once the agent pauses for
  ``monologue_release_pause_s``.
* **Pace** (hysteresis): on once agent pace ≥ ``pace_on_ratio`` × target for ``pace_sustain_s``,
  off at ≤ ``pace_off_ratio`` × target (or when pace/target become unknown).
  **Customer-relative** (:mod:`pacelight.cues.rapport`, ``settings.rapport``, on by default): when
  the observation carries the customer's cumulative pace counters (the pipeline always does), the
  target is the customer-relative target (the norm moved toward the customer's pace of the last
  60 s, bounded to 80..110 % of the norm; the norm itself while the customer has < 8 s voiced
  there) and the rapport thresholds apply (on at ≥ 1.25 × for 8 s, off at ≤ 1.12 ×). Scripted
  observations without those counters use the fixed-norm rule above.
* **Energy** (acoustic arousal from the tone model, not emotion): ``detail="calm"`` when the
  customer's arousal has been high (≥ ``arousal_high``) for ``energy_calm_sustain_s`` while the
  agent's is high too; off when either drops below ``arousal_high - arousal_hysteresis``.
  ``detail="more-energy"`` (off by default, ``energy_more_enabled``): the agent's arousal ≤
  ``arousal_low`` for ``energy_more_sustain_s`` while the customer is not low. With
  ``settings.rapport.enabled`` (default) each party's arousal is first smoothed over
  ``rapport.arousal_window_s`` (the other party's turns do not erase it) and "high" means ≥
  ``rapport.energy_high``.
* **Deferral of non-urgent cues** (monologue, pace, energy): once decided they wait for the agent's
  next pause (``agent_talking`` false) but at most ``defer_max_s`` (3 s). At the deadline the cue is
  **shown anyway** (if its condition and the limits still hold): the cues exist for agents who do
  not pause, so dropping them would silence the cue exactly for those who need it. A pending cue
  whose condition ends before it is shown is dropped silently (nothing recorded).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields
from typing import Literal

from pacelight.cues.rapport import RapportSettings, RapportTracker
from pacelight.errors import ConfigError
from pacelight.events import CueChange, Observation

CueKind = Literal["overtalk", "monologue", "pace", "energy"]
CUE_KINDS: tuple[CueKind, ...] = ("overtalk", "monologue", "pace", "energy")  # priority order, highest first
_PRIORITY: dict[str, int] = {k: len(CUE_KINDS) - i for i, k in enumerate(CUE_KINDS)}


@dataclass(frozen=True, slots=True)
class CueSettings:
    """Cue engine thresholds (seconds, ratios of the pace target, arousal scores 0..1)."""

    quiet_start_s: float = 15.0
    max_onsets_per_window: int = 2
    rate_window_s: float = 60.0
    min_on_s: float = 2.0
    max_on_s: float = 30.0  # non-urgent cues; overtalk lasts while the overtalk does
    defer_max_s: float = 3.0
    refractory_overtalk_s: float = 20.0
    refractory_monologue_s: float = 60.0
    refractory_pace_s: float = 45.0
    refractory_energy_s: float = 60.0
    overtalk_detect_s: float = 1.0
    overtalk_customer_started_s: float = 3.0
    monologue_on_s: float = 60.0
    monologue_release_pause_s: float = 2.0
    pace_on_ratio: float = 1.20
    pace_off_ratio: float = 1.10
    pace_sustain_s: float = 5.0
    arousal_high: float = 0.7
    arousal_low: float = 0.3
    arousal_hysteresis: float = 0.1
    energy_calm_sustain_s: float = 10.0
    energy_more_enabled: bool = False
    energy_more_sustain_s: float = 20.0
    enabled_kinds: tuple[str, ...] = CUE_KINDS
    rapport: RapportSettings = field(default_factory=RapportSettings)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not v >= 0.0:
                raise ConfigError(f"cue setting {f.name} must be >= 0, got {v!r}")
        if self.max_onsets_per_window < 1:
            raise ConfigError("cue setting max_onsets_per_window must be >= 1")
        if self.overtalk_detect_s > 1.5:
            raise ConfigError("cue setting overtalk_detect_s must be <= 1.5 (overtalk cue within 1.5 s)")
        if not self.pace_off_ratio < self.pace_on_ratio:
            raise ConfigError("cue setting pace_off_ratio must be below pace_on_ratio (hysteresis)")
        if not 0.0 <= self.arousal_low < self.arousal_high <= 1.0:
            raise ConfigError("cue settings need 0 <= arousal_low < arousal_high <= 1")
        unknown = set(self.enabled_kinds) - set(CUE_KINDS)
        if unknown:
            raise ConfigError(f"unknown cue kinds in enabled_kinds: {sorted(unknown)}")

    @classmethod
    def from_mapping(cls, values: dict[str, object]) -> CueSettings:
        """Build from config values; unknown keys are rejected."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown cue settings: {sorted(unknown)}")
        kw = dict(values)
        if "enabled_kinds" in kw:
            kw["enabled_kinds"] = tuple(kw["enabled_kinds"])  # type: ignore[arg-type]
        if isinstance(kw.get("rapport"), dict):
            kw["rapport"] = RapportSettings.from_mapping(kw["rapport"])  # type: ignore[arg-type]
        return cls(**kw)  # type: ignore[arg-type]

    def refractory_s(self, kind: str) -> float:
        return float(getattr(self, f"refractory_{kind}_s"))


@dataclass(slots=True)
class _Shown:
    kind: CueKind
    detail: str
    since_s: float


@dataclass(slots=True)
class _Pending:
    kind: CueKind
    detail: str
    deadline_s: float


@dataclass(slots=True)
class _RuleState:
    pace_high_since_s: float | None = None
    pace_on: bool = False
    calm_since_s: float | None = None
    calm_on: bool = False
    more_since_s: float | None = None
    more_on: bool = False


@dataclass(slots=True)
class CueEngine:
    """Streaming cue decisions; one instance per call."""

    settings: CueSettings = field(default_factory=CueSettings)
    _shown: _Shown | None = None
    _pending: _Pending | None = None
    _rules: _RuleState = field(default_factory=_RuleState)
    _onsets: deque[float] = field(default_factory=deque)
    _last_off_s: dict[str, float] = field(default_factory=dict)
    _history: list[CueChange] = field(default_factory=list)
    _t_s: float = 0.0
    _rapport: RapportTracker | None = None

    # ---- public -------------------------------------------------------------------------------
    @property
    def shown(self) -> tuple[str, str] | None:
        """(kind, detail) of the cue on now, or None."""
        return (self._shown.kind, self._shown.detail) if self._shown else None

    def history(self) -> list[CueChange]:
        """Every on/off so far, in order (the summary's ``cues``: t, kind, state)."""
        return list(self._history)

    @property
    def rapport(self) -> RapportTracker | None:
        """The call's rapport tracker (None when ``settings.rapport.enabled`` is False)."""
        return self._rapport

    def rapport_summary(self) -> dict[str, object] | None:
        """The summary's ``rapport`` section (docs/summary-extensions.md), or None when disabled."""
        return self._rapport.summary() if self._rapport is not None else None

    def summary_cues(self) -> list[dict[str, object]]:
        """``history()`` in the call-summary shape ``{"t", "kind", "state"}``."""
        return [{"t": round(c.t_s, 3), "kind": c.kind, "state": c.state} for c in self._history]

    def finish(self, t_s: float | None = None) -> list[CueChange]:
        """End of call: switch off a shown cue so every ``on`` has its ``off``."""
        out: list[CueChange] = []
        self._pending = None
        if self._shown is not None:
            self._off(self._t_s if t_s is None else t_s, out)
        return out

    def update(self, obs: Observation) -> list[CueChange]:
        """Feed one analysis block; returns the cue changes it caused (often none)."""
        t = obs.t_s
        self._t_s = t
        s = self.settings
        if self._rapport is None and s.rapport.enabled:
            self._rapport = RapportTracker(s.rapport)
        out: list[CueChange] = []
        while self._onsets and self._onsets[0] <= t - s.rate_window_s:
            self._onsets.popleft()

        wanted = self._wanted(obs)  # kind -> detail for every condition that holds now

        if obs.on_hold:
            self._pending = None
            if self._shown is not None:
                self._off(t, out)
            return out

        # 1. switch off (or retune) the shown cue when its condition ended / it timed out
        cur = self._shown
        if cur is not None:
            on_for = t - cur.since_s
            still = cur.kind in wanted and wanted[cur.kind] == cur.detail
            timed_out = cur.kind != "overtalk" and on_for >= s.max_on_s
            if (not still or timed_out) and on_for >= s.min_on_s:
                self._off(t, out)

        # 2. the best candidate: highest-priority wanted kind that may start now
        cand = None
        for kind in CUE_KINDS:
            if kind in wanted and self._may_start(kind, t):
                cand = kind
                break
        cur = self._shown
        if cand is not None and cur is not None:
            if cand == cur.kind or _PRIORITY[cand] <= _PRIORITY[cur.kind]:
                cand = None
            elif cand != "overtalk" and t - cur.since_s < s.min_on_s:
                cand = None

        # 3. pending (deferred) cue bookkeeping
        pend = self._pending
        if pend is not None and (pend.kind not in wanted or wanted[pend.kind] != pend.detail
                                 or not self._may_start(pend.kind, t)):
            self._pending = pend = None
        if cand is not None and pend is not None and _PRIORITY[cand] < _PRIORITY[pend.kind]:
            cand = pend.kind  # keep waiting for the higher pending one
        if cand is None:
            cand = pend.kind if pend is not None else None
            if cand is not None and self._shown is not None and _PRIORITY[cand] <= _PRIORITY[self._shown.kind]:
                cand = None
        if cand is None:
            return out

        detail = wanted[cand]
        if cand != "overtalk":
            if pend is None or pend.kind != cand:
                self._pending = pend = _Pending(cand, detail, t + s.defer_max_s)
            if obs.agent_talking and t < pend.deadline_s - 1e-9:
                return out  # wait for the agent's next pause (at most defer_max_s)
            self._pending = None
        elif pend is not None:
            self._pending = None  # overtalk wins; the deferred cue is dropped
        if self._shown is not None:
            self._off(t, out)
        self._on(cand, detail, t, out)
        return out

    # ---- rules --------------------------------------------------------------------------------
    def _wanted(self, obs: Observation) -> dict[str, str]:
        s = self.settings
        r = self._rules
        t = obs.t_s
        wanted: dict[str, str] = {}
        en = s.enabled_kinds
        # overtalk: the agent talking over the customer
        if "overtalk" in en and obs.agent_talking and obs.customer_talking:
            need = s.overtalk_detect_s if obs.overlap_by != "customer" else s.overtalk_customer_started_s
            if obs.overlap_s >= need - 1e-9:
                wanted["overtalk"] = ""
        # monologue: agent holds the floor
        if "monologue" in en and obs.agent_run_s >= s.monologue_on_s - 1e-9 \
                and obs.agent_pause_s < s.monologue_release_pause_s:
            wanted["monologue"] = ""
        # pace with hysteresis (customer-relative when the pipeline supplies the customer's counters)
        pace, target = obs.agent_pace_syl_s, obs.agent_pace_target_syl_s
        on_ratio, off_ratio, sustain_s = s.pace_on_ratio, s.pace_off_ratio, s.pace_sustain_s
        rs = self._rapport.update(obs) if self._rapport is not None else None
        if rs is not None and obs.customer_voiced_total_s is not None:
            rp = s.rapport
            target = rs.target_syl_s
            on_ratio, off_ratio, sustain_s = rp.pace_on_ratio, rp.pace_off_ratio, rp.pace_sustain_s
        if pace is None or target is None or target <= 0:
            r.pace_high_since_s, r.pace_on = None, False
        else:
            ratio = pace / target
            if ratio >= on_ratio - 1e-9:
                if r.pace_high_since_s is None:
                    r.pace_high_since_s = t
                if t - r.pace_high_since_s >= sustain_s - 1e-9:
                    r.pace_on = True
            else:
                r.pace_high_since_s = None
            if ratio <= off_ratio + 1e-9:
                r.pace_on = False
        if "pace" in en and r.pace_on:
            wanted["pace"] = ""
        # energy
        aa, ca = obs.agent_arousal, obs.customer_arousal
        high = s.arousal_high
        if rs is not None:
            aa, ca, high = rs.agent_arousal, rs.customer_arousal, s.rapport.energy_high
        lo_release = high - s.arousal_hysteresis
        if aa is None or ca is None:
            r.calm_since_s, r.calm_on, r.more_since_s, r.more_on = None, False, None, False
        else:
            if ca >= high and aa >= high:
                if r.calm_since_s is None:
                    r.calm_since_s = t
                if t - r.calm_since_s >= s.energy_calm_sustain_s - 1e-9:
                    r.calm_on = True
            else:
                r.calm_since_s = None
            if ca < lo_release or aa < lo_release:
                r.calm_on = False
            if s.energy_more_enabled and aa <= s.arousal_low and ca > s.arousal_low:
                if r.more_since_s is None:
                    r.more_since_s = t
                if t - r.more_since_s >= s.energy_more_sustain_s - 1e-9:
                    r.more_on = True
            else:
                r.more_since_s = None
            if aa > s.arousal_low + s.arousal_hysteresis or ca <= s.arousal_low:
                r.more_on = False
        if "energy" in en:
            if r.calm_on:
                wanted["energy"] = "calm"
            elif r.more_on:
                wanted["energy"] = "more-energy"
        return wanted

    def _may_start(self, kind: str, t: float) -> bool:
        s = self.settings
        if t < s.quiet_start_s:
            return False
        if self._shown is not None and self._shown.kind == kind:
            return False
        if len(self._onsets) >= s.max_onsets_per_window:
            return False
        last_off = self._last_off_s.get(kind)
        return last_off is None or t - last_off >= s.refractory_s(kind) - 1e-9

    # ---- transitions --------------------------------------------------------------------------
    def _on(self, kind: CueKind, detail: str, t: float, out: list[CueChange]) -> None:
        if kind == "energy" and self._rapport is not None:
            self._rapport.record_energy_onset(detail)
        self._shown = _Shown(kind, detail, t)
        self._onsets.append(t)
        ch = CueChange(t_s=t, kind=kind, state="on", detail=detail)
        out.append(ch)
        self._history.append(ch)

    def _off(self, t: float, out: list[CueChange]) -> None:
        cur = self._shown
        if cur is None:
            return
        self._shown = None
        self._last_off_s[cur.kind] = t
        ch = CueChange(t_s=t, kind=cur.kind, state="off", detail=cur.detail)
        out.append(ch)
        self._history.append(ch)
