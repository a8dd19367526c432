"""Rapport cues on scripted Observation timelines: customer-relative target, bounds, fallback, energy."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _cue_helpers import BLOCK_S, obs, run  # noqa: F401 (shared timeline helpers)
from pacelight.cues.engine import CueEngine, CueSettings
from pacelight.cues.rapport import (
    ArousalLevel,
    CustomerPaceWindow,
    RapportSettings,
    customer_relative_target_syl_s,
)
from pacelight.cues.rapport_eval import max_onsets_in_window
from pacelight.errors import ConfigError
from pacelight.events import CueChange
from pacelight.summary import CallSummary, parse_summary

NORM = 5.0


def ons(changes: list[CueChange], kind: str | None = None) -> list[float]:
    return [round(c.t_s, 2) for c in changes if c.state == "on" and (kind is None or c.kind == kind)]


def conversation(agent_pace: float, customer_rate: float, customer_voiced_frac: float = 0.5,
                 agent_paused: Callable[[float], bool] = lambda t: (t % 6.0) >= 5.0):
    """Agent rolling pace fixed (known from t = 12 s, after 8 s voiced); the customer's counters grow at
    ``customer_rate`` syl/s while voiced."""
    def f(t: float) -> dict[str, object]:
        v = t * customer_voiced_frac
        paused = agent_paused(t)
        return dict(agent_pace_syl_s=agent_pace if t >= 12.0 else None, agent_pace_target_syl_s=NORM, customer_pace_syl_s=customer_rate,
                    customer_voiced_total_s=v, customer_syllables_total=v * customer_rate,
                    agent_talking=not paused, agent_pause_s=0.5 if paused else 0.0)
    return f


# ---- target -----------------------------------------------------------------------------------
def test_target_follows_customer_within_bounds_and_falls_back_to_norm() -> None:
    s = RapportSettings()
    assert customer_relative_target_syl_s(NORM, 4.6, 20.0, s) == (pytest.approx(4.6), True)
    assert customer_relative_target_syl_s(NORM, 3.0, 20.0, s) == (pytest.approx(4.0), True)  # floor 80 %
    assert customer_relative_target_syl_s(NORM, 7.5, 20.0, s) == (pytest.approx(5.5), True)  # cap 110 %
    assert customer_relative_target_syl_s(NORM, 3.0, 7.9, s) == (NORM, False)  # barely spoken: norm
    assert customer_relative_target_syl_s(NORM, None, 30.0, s) == (NORM, False)
    assert customer_relative_target_syl_s(None, 4.0, 30.0, s) == (None, False)
    half = RapportSettings(follow=0.5)
    assert customer_relative_target_syl_s(NORM, 4.4, 20.0, half)[0] == pytest.approx(4.7)
    off = RapportSettings(enabled=False)
    assert customer_relative_target_syl_s(NORM, 4.4, 20.0, off) == (NORM, False)


def test_customer_window_is_the_last_60_s_of_call_time() -> None:
    w = CustomerPaceWindow(60.0)
    # 0-30 s: customer voiced half the time at 3 syl/s; 30-100 s: silent
    for i in range(0, 2001):
        t = i * BLOCK_S
        v = min(t, 30.0) * 0.5
        w.update(t, v, 3.0 * v)
        if t == 30.0:
            assert w.voiced_s() == pytest.approx(15.0) and w.rate_syl_s() == pytest.approx(3.0)
        if t == 80.0:  # window 20-80 s holds 5 s voiced
            assert w.voiced_s() == pytest.approx(5.0, abs=0.6) and w.rate_syl_s() == pytest.approx(3.0)
    assert w.voiced_s() == 0.0 and w.rate_syl_s() is None  # window 40-100 s: nothing
    assert len(w._snaps) <= 62  # constant memory


def test_arousal_level_holds_across_the_other_partys_turn_and_forgets_after_the_window() -> None:
    a = ArousalLevel(12.0)
    vals = []
    for i in range(0, 600):
        t = i * BLOCK_S
        score = 0.9 if t < 4.0 else None  # spoke 0-4 s (fresh score), then silent
        vals.append(a.update(t, BLOCK_S, score))
    assert vals[int(10.0 / BLOCK_S)] == pytest.approx(0.9)  # 6 s after the turn: still known
    assert vals[int(20.0 / BLOCK_S)] is None  # > 12 s after: forgotten


# ---- pace cue ---------------------------------------------------------------------------------
def test_pace_cue_relative_to_slow_customer_fires_after_8_s_sustained_not_in_first_15_s() -> None:
    # customer 3.6 syl/s → target floor 4.0 (80 % of 5.0); agent 5.2 = 1.30 × target, 1.04 × norm
    eng = CueEngine()
    ch = run(eng, 0, 60, conversation(5.2, 3.6))
    on = ons(ch, "pace")
    # customer reaches 8 s voiced at t=16 (before: the norm, ratio 1.04); then 8 s sustained,
    # then deferral to the agent's next pause (≤ 3 s)
    assert on and 24.0 - 1e-9 <= on[0] <= 27.0
    # the old fixed-norm rule would not cue this agent at all
    legacy = CueEngine(CueSettings(rapport=RapportSettings(enabled=False)))
    assert ons(run(legacy, 0, 60, conversation(5.2, 3.6)), "pace") == []
    rs = eng.rapport_summary()
    assert rs is not None and rs["pace_ratio_median"] == pytest.approx(5.2 / 3.6, rel=0.01)
    assert 0.5 < rs["pace_mismatch_share"] <= 1.0  # type: ignore[operator]


def test_adapting_agent_and_fast_customer_get_no_pace_cue() -> None:
    assert ons(run(CueEngine(), 0, 90, conversation(3.9, 3.7)), "pace") == []  # matches a slow customer
    # fast customer 6.5 → target capped at 5.5; agent 6.6 = 1.2 × cap: no cue (a 1.25 mismatch would be 6.875)
    assert ons(run(CueEngine(), 0, 90, conversation(6.6, 6.5)), "pace") == []
    assert ons(run(CueEngine(), 0, 90, conversation(7.0, 6.5)), "pace") != []  # 1.27 × the cap


def test_fallback_to_norm_when_customer_barely_spoke() -> None:
    # customer voiced only 10 % of the time: < 8 s in any 60 s → norm 5.0 applies
    eng = CueEngine()
    assert ons(run(eng, 0, 90, conversation(5.2, 3.0, customer_voiced_frac=0.1)), "pace") == []
    assert eng.rapport_summary()["target_follows_customer_share"] == 0.0  # type: ignore[index]
    # against the norm, 1.25 × for 8 s still fires (6.5 = 1.3 × 5.0)
    assert ons(run(CueEngine(), 0, 90, conversation(6.5, 3.0, customer_voiced_frac=0.1)), "pace") != []


def test_pace_mismatch_needs_8_s_sustained() -> None:
    def f(t: float) -> dict[str, object]:
        d = conversation(5.2, 3.6)(t)
        d["agent_pace_syl_s"] = 5.2 if (t % 9.0) < 7.5 else 4.0  # 7.5 s high, then back on target
        return d
    assert ons(run(CueEngine(), 0, 120, f), "pace") == []


# ---- energy cue -------------------------------------------------------------------------------
def alternating(agent_score: float | None, customer_score: float | None, turn_s: float = 4.0):
    """Turns alternate every ``turn_s``; a party's score is fresh (≤ 3 s old) only during its turn."""
    def f(t: float) -> dict[str, object]:
        agent_turn = int(t // turn_s) % 2 == 0
        return dict(agent_talking=agent_turn, agent_pause_s=0.0 if agent_turn else t % turn_s,
                    agent_arousal=agent_score if agent_turn else None,
                    customer_arousal=customer_score if not agent_turn else None)
    return f


def test_energy_calm_over_alternating_turns_and_not_when_agent_is_calm() -> None:
    ch = run(CueEngine(), 0, 60, alternating(0.8, 0.85))
    on = [(round(c.t_s, 2), c.detail) for c in ch if c.state == "on"]
    assert on and on[0][1] == "calm" and on[0][0] >= 15.0
    eng = CueEngine()
    run(eng, 0, 60, alternating(0.8, 0.85))
    assert eng.rapport_summary()["energy_calm_cues"] == 1  # type: ignore[index]
    assert run(CueEngine(), 0, 90, alternating(0.35, 0.85)) == []  # agitated customer, calm agent
    assert run(CueEngine(), 0, 90, alternating(0.85, 0.3)) == []  # calm customer
    # the raw (unsmoothed) rule cannot see both parties high at once in alternating turns
    legacy = CueEngine(CueSettings(rapport=RapportSettings(enabled=False)))
    assert run(legacy, 0, 60, alternating(0.8, 0.85)) == []


def test_more_energy_is_opt_in() -> None:
    assert run(CueEngine(), 0, 90, alternating(0.15, 0.6)) == []
    ch = run(CueEngine(CueSettings(energy_more_enabled=True)), 0, 90, alternating(0.15, 0.6))
    assert [c.detail for c in ch if c.state == "on"][:1] == ["more-energy"]


# ---- rate, summary, settings --------------------------------------------------------------------
def test_cue_rate_at_most_two_per_minute_with_every_rule_firing() -> None:
    def f(t: float) -> dict[str, object]:
        d = conversation(7.0, 3.6)(t)
        d.update(alternating(0.9, 0.9, 3.0)(t))
        return d
    s = CueSettings(refractory_pace_s=0.0, refractory_energy_s=0.0, max_on_s=3.0)
    ch = run(CueEngine(s), 0, 600, f)
    t_on = [c.t_s for c in ch if c.state == "on"]
    assert len(t_on) >= 10 and min(t_on) >= 15.0
    assert max_onsets_in_window(t_on) <= 2
    assert len(t_on) / 10.0 <= 2.0


def test_summary_rapport_section_is_optional_and_validated() -> None:
    eng = CueEngine()
    run(eng, 0, 60, conversation(5.2, 3.6))
    ex = {
        "schema": "pacelight.call-summary/1", "call_id": "c-1", "device_id": "d-1",
        "started_at": "2026-11-23T10:00:00Z", "duration_s": 60.0,
        "talk": {"agent_s": 30.0, "customer_s": 20.0, "silence_s": 10.0, "overlap_s": 0.0, "agent_ratio": 0.6},
        "overtalk": {"events": 0, "agent_interruptions": 0, "customer_interruptions": 0,
                     "agent_backchannels": 0, "customer_backchannels": 0},
        "pace": {"agent_syl_s": 5.2, "customer_syl_s": 3.6},
        "monologue": {"agent_longest_s": 5.0, "customer_longest_s": 4.0},
        "tone": {p: {"low": None, "neutral": None, "high": None, "mean_score": None} for p in ("agent", "customer")},
        "cues": [], "model": {"tone": "none", "pipeline": "x"},
    }
    assert "rapport" not in parse_summary(ex).to_dict()
    s = parse_summary({**ex, "rapport": eng.rapport_summary()})
    d = s.to_dict()
    assert d["rapport"]["pace_ratio_median"] == pytest.approx(1.444, abs=0.01)
    assert isinstance(parse_summary(s.to_json()), CallSummary)
    with pytest.raises(ValueError):
        parse_summary({**ex, "rapport": {**eng.rapport_summary(), "pace_mismatch_share": 1.5}})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        parse_summary({**ex, "rapport": {**eng.rapport_summary(), "extra": 1}})  # type: ignore[dict-item]


def test_rapport_settings_validation_and_mapping() -> None:
    s = CueSettings.from_mapping({"rapport": {"target_min_of_norm": 0.9, "pace_sustain_s": 10.0}})
    assert s.rapport.target_min_of_norm == 0.9 and s.rapport.pace_sustain_s == 10.0
    with pytest.raises(ConfigError):
        CueSettings.from_mapping({"rapport": {"nope": 1}})
    with pytest.raises(ConfigError):
        RapportSettings(target_min_of_norm=1.2)
    with pytest.raises(ConfigError):
        RapportSettings(pace_on_ratio=1.1, pace_off_ratio=1.2)
    with pytest.raises(ConfigError):
        RapportSettings(customer_min_voiced_s=90.0)
