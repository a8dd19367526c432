"""Cue engine rules on scripted Observation timelines (50 ms blocks, as the pipeline calls it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _cue_helpers import BLOCK_S, obs, run  # noqa: F401 (shared timeline helpers)
from pacelight.cues.engine import CueEngine, CueSettings
from pacelight.errors import ConfigError
from pacelight.events import CueChange


def ons(changes: list[CueChange]) -> list[tuple[float, str]]:
    return [(round(c.t_s, 2), c.kind) for c in changes if c.state == "on"]


def overtalk_by_agent(start: float, end: float) -> Callable[[float], dict[str, object]]:
    def f(t: float) -> dict[str, object]:
        if start <= t < end:
            return dict(agent_talking=True, customer_talking=True, overlap_s=t - start, overlap_by="agent",
                        agent_run_s=t - start, agent_pause_s=0.0)
        return {}
    return f


def pace(p: Callable[[float], float], talking: Callable[[float], bool] = lambda t: False):
    def f(t: float) -> dict[str, object]:
        return dict(agent_pace_syl_s=p(t), agent_pace_target_syl_s=4.0, agent_talking=talking(t),
                    agent_pause_s=0.0 if talking(t) else 0.5)
    return f


def test_overtalk_by_agent_shown_within_1_5_s_and_off_after_overlap() -> None:
    eng = CueEngine()
    ch = run(eng, 0, 40, overtalk_by_agent(20.0, 24.0))
    assert ons(ch) == [(21.0, "overtalk")]
    assert ch[0].t_s - 20.0 <= 1.5
    off = [c for c in ch if c.state == "off"]
    assert len(off) == 1 and off[0].kind == "overtalk" and off[0].t_s == pytest.approx(24.0)


def test_backchannel_overlap_is_not_overtalk() -> None:
    eng = CueEngine()
    assert run(eng, 0, 30, overtalk_by_agent(20.0, 20.9)) == []


def test_customer_interruption_gets_grace_then_cued_if_agent_keeps_talking() -> None:
    def cust(start: float, end: float):
        def f(t: float) -> dict[str, object]:
            if start <= t < end:
                return dict(agent_talking=True, customer_talking=True, overlap_s=t - start,
                            overlap_by="customer", agent_run_s=10.0, agent_pause_s=0.0)
            return {}
        return f
    assert run(CueEngine(), 0, 30, cust(20.0, 22.0)) == []  # agent yielded within 2 s: no cue
    ch = run(CueEngine(), 0, 30, cust(20.0, 25.0))
    assert ons(ch) == [(23.0, "overtalk")]


def test_no_cues_in_first_15_s_or_on_hold() -> None:
    assert run(CueEngine(), 0, 14.9, overtalk_by_agent(2.0, 14.9)) == []
    def held(t: float) -> dict[str, object]:
        d = overtalk_by_agent(20.0, 40.0)(t)
        d["on_hold"] = 25.0 <= t < 40.0
        return d
    eng = CueEngine()
    ch = run(eng, 0, 45, held)
    assert ons(ch) == [(21.0, "overtalk")]
    assert [(c.t_s, c.state) for c in ch if c.state == "off"] == [(25.0, "off")]  # hold switches it off


def test_pace_hysteresis_sustain_and_deferral_to_pause() -> None:
    # pace +25 % from t=20; agent talking continuously except a pause at 26.0-26.5
    eng = CueEngine()
    talking = lambda t: not (26.0 <= t < 26.5)  # noqa: E731
    ch = run(eng, 0, 30, pace(lambda t: 5.0 if t >= 20 else 4.0, talking))
    # on once sustained 5 s (t=25), deferred to the next pause (26.0) within 3 s
    assert ons(ch) == [(26.0, "pace")]
    # +15 %: between the thresholds, stays on; +10 %: off
    ch = run(eng, 30, 40, pace(lambda t: 4.6, talking))
    assert ch == []
    ch = run(eng, 40, 41, pace(lambda t: 4.4, talking))
    assert [(c.t_s, c.kind, c.state) for c in ch] == [(40.0, "pace", "off")]


def test_pace_needs_5_s_sustained() -> None:
    # +25 % but dropping to target every 4 s: never sustained 5 s
    ch = run(CueEngine(), 0, 60, pace(lambda t: 5.0 if (t % 4.5) < 4.0 else 4.0))
    assert ch == []


def test_deferred_cue_shown_at_deadline_when_agent_never_pauses() -> None:
    ch = run(CueEngine(), 0, 30, pace(lambda t: 5.0 if t >= 16 else 4.0, lambda t: True))
    # condition at 21.0, no pause: shown at the 3 s deadline (24.0)
    assert ons(ch) == [(24.0, "pace")]


def test_deferred_cue_dropped_when_condition_ends_before_shown() -> None:
    # pace high 16-21.5 (cue wanted at 21.0), falls to target at 21.5, agent never pauses
    ch = run(CueEngine(), 0, 30, pace(lambda t: 5.0 if 16 <= t < 21.5 else 4.0, lambda t: True))
    assert ch == []


def test_minimum_on_time() -> None:
    eng = CueEngine(CueSettings(min_on_s=3.0))
    ch = run(eng, 0, 30, overtalk_by_agent(20.0, 21.5))  # condition only 0.5 s
    assert [(c.t_s, c.state) for c in ch] == [(21.0, "on"), (24.0, "off")]


def test_refractory_per_kind() -> None:
    s = CueSettings(refractory_overtalk_s=20.0)
    eng = CueEngine(s)
    f1 = overtalk_by_agent(20.0, 23.0)
    f2 = overtalk_by_agent(30.0, 33.0)
    f3 = overtalk_by_agent(45.0, 48.0)
    ch = run(eng, 0, 60, lambda t: f1(t) or f2(t) or f3(t))
    # off at 23.0 → no overtalk until 43.0: the one at 30 is suppressed, the one at 45 is shown
    assert ons(ch) == [(21.0, "overtalk"), (46.0, "overtalk")]


def test_rate_limit_two_onsets_per_rolling_minute() -> None:
    s = CueSettings(refractory_overtalk_s=0.0)
    eng = CueEngine(s)
    starts = [20.0, 30.0, 40.0, 50.0, 82.0]
    fs = [overtalk_by_agent(a, a + 3.0) for a in starts]
    ch = run(eng, 0, 100, lambda t: next((d for f in fs if (d := f(t))), {}))
    # onsets at 21, 31; 41 and 51 are within 60 s of both; 83 is > 60 s after 21 and 31? 83-31=52 → one slot
    assert ons(ch) == [(21.0, "overtalk"), (31.0, "overtalk"), (83.0, "overtalk")]


def test_priority_overtalk_preempts_pace_and_monologue_preempts_pace() -> None:
    eng = CueEngine()
    def f(t: float) -> dict[str, object]:
        d = pace(lambda _t: 5.0, lambda _t: False)(t)
        if 30.0 <= t < 33.0:
            d.update(agent_talking=True, customer_talking=True, overlap_s=t - 30.0, overlap_by="agent")
        return d
    ch = run(eng, 0, 40, f)
    seq = [(round(c.t_s, 2), c.kind, c.state) for c in ch]
    assert seq[:4] == [(15.0, "pace", "on"), (31.0, "pace", "off"), (31.0, "overtalk", "on"),
                       (33.0, "overtalk", "off")]
    # a lower-priority cue never preempts a higher one
    eng = CueEngine()
    def g(t: float) -> dict[str, object]:
        d = dict(agent_talking=True, agent_run_s=t, agent_pause_s=0.0)
        if 62.0 <= t:
            d.update(agent_pace_syl_s=6.0, agent_pace_target_syl_s=4.0)
        return d
    ch = run(eng, 0, 80, g)
    assert ons(ch) == [(63.0, "monologue")]  # monologue wanted at 60, deferred to the 3 s deadline


def test_monologue_off_after_pause() -> None:
    eng = CueEngine()
    def f(t: float) -> dict[str, object]:
        if t < 65.0:
            return dict(agent_talking=True, agent_run_s=t, agent_pause_s=0.0)
        return dict(agent_talking=False, agent_run_s=65.0, agent_pause_s=t - 65.0)
    ch = run(eng, 0, 70, f)
    assert [(round(c.t_s, 2), c.kind, c.state) for c in ch] == [(63.0, "monologue", "on"),
                                                                 (67.0, "monologue", "off")]


def test_energy_calm_and_more_energy_opt_in() -> None:
    def aro(a: float, c: float, talking: bool = False):
        return lambda t: dict(agent_arousal=a, customer_arousal=c, agent_talking=talking)
    ch = run(CueEngine(), 0, 40, aro(0.8, 0.9))
    assert [(c.t_s, c.kind, c.detail) for c in ch] == [(15.0, "energy", "calm")]  # sustained 10 s by t=10
    assert run(CueEngine(), 0, 60, aro(0.5, 0.9)) == []  # agent not high: no calm cue
    assert run(CueEngine(), 0, 60, aro(0.1, 0.5)) == []  # more-energy is off by default
    ch = run(CueEngine(CueSettings(energy_more_enabled=True)), 0, 60, aro(0.1, 0.5))
    # on after 20 s sustained; off at max_on_s (30 s) even though the condition persists
    assert [(c.t_s, c.state, c.detail) for c in ch] == [(20.0, "on", "more-energy"), (50.0, "off", "more-energy")]


def test_history_and_finish_pair_every_on_with_off() -> None:
    eng = CueEngine()
    run(eng, 0, 25, overtalk_by_agent(20.0, 30.0))
    eng.finish(25.0)
    cues = eng.summary_cues()
    assert cues == [{"t": 21.0, "kind": "overtalk", "state": "on"}, {"t": 25.0, "kind": "overtalk", "state": "off"}]


def test_settings_validation() -> None:
    with pytest.raises(ConfigError):
        CueSettings(overtalk_detect_s=2.0)
    with pytest.raises(ConfigError):
        CueSettings(pace_on_ratio=1.1, pace_off_ratio=1.2)
    with pytest.raises(ConfigError):
        CueSettings.from_mapping({"bogus_s": 1.0})
    assert CueSettings.from_mapping({"min_on_s": 1.0}).min_on_s == 1.0
