"""Per-language pace targets and an optional per-agent baseline.

Pace is syllables per second of voiced speech (pauses ≥ 0.2 s removed), so targets are
articulation-type rates. The cue engine fires the pace cue when an agent's rolling pace stays
≥ +20 % over :func:`effective_target_syl_s` for 5 s.

Defaults: read-speech syllable rates from Pellegrino, Coupé & Marsico (2011), "A cross-language
perspective on speech information rate", Language 87(3):539–558 (Table 2, mean syllable rate of
read texts), times a conversational factor (conversational speech is slower than read speech;
0.9 is our assumption, not a published constant — override it per deployment). Languages not in
the table fall back to ``default_syl_s``. Every value can be overridden from the device config
(``pace_targets`` section, see :meth:`TargetSettings.from_config`).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

log = logging.getLogger(__name__)

# Read-speech syllable rates, syl/s (Pellegrino, Coupé & Marsico 2011, Language 87(3), Table 2).
READ_RATES_SYL_S: Mapping[str, float] = MappingProxyType({
    "cmn": 5.18,  # Mandarin
    "de": 5.97,
    "en": 6.19,
    "es": 7.82,
    "fr": 7.18,
    "it": 6.99,
    "ja": 7.84,
    "vi": 5.22,
})
CONVERSATIONAL_FACTOR = 0.9  # assumption: conversational ≈ 90 % of read rate (override in config)
DEFAULT_TARGET_SYL_S = 5.5  # language not in the table (≈ 0.9 × the table's mean of 6.55)
_ALIASES = {"zh": "cmn", "zh-cn": "cmn", "cmn-latn-pinyin": "cmn", "en-us": "en", "en-gb": "en"}


def _norm_lang(lang: str | None) -> str:
    if not lang:
        return ""
    lang = lang.strip().lower().replace("_", "-")
    return _ALIASES.get(lang, lang.split("-")[0])


@dataclass(frozen=True)
class TargetSettings:
    """Pace-target configuration (units in names; unknown config keys are rejected)."""

    overrides_syl_s: Mapping[str, float] = field(default_factory=dict)  # lang → target (final value)
    conversational_factor: float = CONVERSATIONAL_FACTOR
    default_syl_s: float = DEFAULT_TARGET_SYL_S
    baseline_clamp: float = 0.25  # a learned baseline may move the target at most ±25 %

    def __post_init__(self) -> None:
        if not 0.3 <= self.conversational_factor <= 1.5:
            raise ValueError("conversational_factor must be in [0.3, 1.5]")
        if not 1.0 <= self.default_syl_s <= 12.0:
            raise ValueError("default_syl_s must be in [1, 12] syl/s")
        if not 0.0 <= self.baseline_clamp <= 1.0:
            raise ValueError("baseline_clamp must be in [0, 1]")
        for k, v in self.overrides_syl_s.items():
            if not isinstance(k, str) or not 1.0 <= float(v) <= 12.0:
                raise ValueError(f"pace target for {k!r} must be in [1, 12] syl/s, got {v!r}")
        object.__setattr__(self, "overrides_syl_s",
                           MappingProxyType({_norm_lang(k): float(v) for k, v in self.overrides_syl_s.items()}))

    @classmethod
    def from_config(cls, cfg: Mapping[str, object] | None) -> TargetSettings:
        """Build from a config mapping such as ``{"overrides_syl_s": {"en": 5.2}, ...}``."""
        if not cfg:
            return cls()
        known = {"overrides_syl_s", "conversational_factor", "default_syl_s", "baseline_clamp"}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"unknown pace target settings: {sorted(unknown)}")
        return cls(**cfg)  # type: ignore[arg-type]


def language_target_syl_s(lang: str | None, settings: TargetSettings | None = None) -> float:
    """Target pace for a language (config override, else table × conversational factor, else default)."""
    s = settings or TargetSettings()
    code = _norm_lang(lang)
    if code in s.overrides_syl_s:
        return s.overrides_syl_s[code]
    if code in READ_RATES_SYL_S:
        return round(READ_RATES_SYL_S[code] * s.conversational_factor, 3)
    return s.default_syl_s


def effective_target_syl_s(lang: str | None, baseline: float | None = None,
                           settings: TargetSettings | None = None) -> float:
    """The target the pace cue compares against.

    Without a baseline: :func:`language_target_syl_s`. With an agent baseline (syl/s, e.g. from
    :class:`AgentBaselineStore`): the baseline, clamped to ±``baseline_clamp`` around the language
    target, so an agent who is fast from day one does not learn "too fast" as normal.
    """
    s = settings or TargetSettings()
    lang_t = language_target_syl_s(lang, s)
    if baseline is None or not (baseline > 0):
        return lang_t
    lo, hi = lang_t * (1 - s.baseline_clamp), lang_t * (1 + s.baseline_clamp)
    return float(min(max(float(baseline), lo), hi))


class AgentBaselineStore:
    """Per-agent pace baseline: the median of an agent's first ``n_calls`` call rates.

    Persisted as JSON ``{"version": 1, "agents": {agent_id: [rate, ...]}}`` with atomic writes
    (temp file + rename). Calls after the first ``n_calls`` do not change the baseline.
    """

    def __init__(self, path: Path | str, n_calls: int = 10, min_calls: int = 5) -> None:
        if not 1 <= min_calls <= n_calls:
            raise ValueError("need 1 <= min_calls <= n_calls")
        self.path = Path(path)
        self.n_calls = n_calls
        self.min_calls = min_calls
        self._agents: dict[str, list[float]] = self._load()

    def _load(self) -> dict[str, list[float]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable pace baseline file %s: %s", self.path, exc)
            return {}
        agents = data.get("agents", {}) if isinstance(data, dict) else {}
        out: dict[str, list[float]] = {}
        for k, v in agents.items() if isinstance(agents, dict) else []:
            if isinstance(v, list):
                out[str(k)] = [float(x) for x in v if isinstance(x, int | float) and 0 < x < 20][: self.n_calls]
        return out

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".pace-baseline.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": 1, "agents": self._agents}, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def record_call(self, agent_id: str, call_rate_syl_s: float | None) -> bool:
        """Add one call's pace (None / absurd values are ignored). Returns True if stored."""
        if call_rate_syl_s is None or not 0.5 <= call_rate_syl_s <= 15.0:
            return False
        rates = self._agents.setdefault(agent_id, [])
        if len(rates) >= self.n_calls:
            return False
        rates.append(round(float(call_rate_syl_s), 4))
        self._save()
        return True

    def baseline_syl_s(self, agent_id: str) -> float | None:
        """Median of the agent's first calls, or None until ``min_calls`` calls were recorded."""
        rates = self._agents.get(agent_id, [])
        if len(rates) < self.min_calls:
            return None
        return float(statistics.median(rates))
