"""Rapport cues on simulated calls through the production analyzer (build_analyzer).

A handful of 75 s calls (the rates over many seeds are in benchmarks/rapport_cues.py).
"""

from __future__ import annotations

import pytest
from pacelight.analysis.pipeline import CallIdentity, PipelineSettings
from pacelight.analysis.runner import build_analyzer
from pacelight.cues.rapport_eval import energy_scenarios, max_onsets_in_window, pace_scenarios, run_call
from pacelight.sim.call import simulate_call

PACE = {s.name: s for s in pace_scenarios(75.0)}
ENERGY = {s.name: s for s in energy_scenarios(75.0)}
SEED = 1000


def check_rate(r: dict) -> None:
    assert r["rate_per_min"] <= 2.0
    assert r["max_onsets_60s"] <= 2
    assert r["first_onset_s"] is None or r["first_onset_s"] >= 15.0


def test_pace_cue_for_agent_racing_a_slow_customer_and_fallback_when_customer_silent() -> None:
    spec = PACE["pace/slow-customer/non-adapting"].spec
    r = run_call(spec, SEED)
    check_rate(r)
    assert r["pace_onsets"] and min(r["pace_onsets"]) >= 15.0
    rap = r["rapport"]
    assert rap["pace_ratio_median"] > 1.25 and rap["pace_mismatch_share"] > 0.3
    assert rap["target_follows_customer_share"] > 0.5
    # same call with the customer channel silent: the target is the language norm throughout
    call = simulate_call(spec, SEED)
    audio = call.audio.copy()
    audio[:, 1] = 0.0
    an = build_analyzer(call.rate, PipelineSettings(language="en"), CallIdentity("sim", "sim-mute"))
    an.feed(audio)
    s = an.finish()
    assert s.rapport is not None
    assert s.rapport.target_follows_customer_share == 0.0
    assert s.rapport.pace_ratio_median is None


@pytest.mark.parametrize("name", ["pace/slow-customer/adapting", "pace/fast-customer/adapting"])
def test_no_pace_cue_for_adapting_agent(name: str) -> None:
    r = run_call(PACE[name].spec, SEED)
    check_rate(r)
    assert r["pace_onsets"] == []
    assert r["rapport"]["pace_mismatch_share"] < 0.1


ENERGY_SEEDS = (SEED, SEED + 1, SEED + 2)


@pytest.mark.parametrize("name,fires", [("energy/high-customer/high-agent", True),
                                        ("energy/low-customer/low-agent", False)])
def test_energy_calm_cue_with_tone_labelled_clips(name: str, fires: bool) -> None:
    # The cue rests on the tone model's arousal, which varies from window to window, so it is a
    # rate (benchmarks/rapport_cues.py: ≥ 90 % of high/high calls, ≤ 5 % otherwise): here it must
    # fire in most of three high/high calls and in none of three low/low calls.
    calls = [run_call(ENERGY[name].spec, seed) for seed in ENERGY_SEEDS]
    if calls[0]["tone_model"] == "none":
        pytest.skip("no tone model installed")
    fired = 0
    for r in calls:
        check_rate(r)
        calm = [t for t, d in r["energy_onsets"] if d == "calm"]
        assert r["rapport"]["energy_calm_cues"] == len(calm)
        fired += bool(calm)
    assert fired >= 2 if fires else fired == 0


def test_max_onsets_in_window() -> None:
    assert max_onsets_in_window([]) == 0
    assert max_onsets_in_window([15.0, 16.0, 75.0, 76.1]) == 2
    assert max_onsets_in_window([15.0, 16.0, 74.0]) == 3
