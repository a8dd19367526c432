"""Simulated-call checks of the rapport cues (used by tests/test_rapport*.py and benchmarks/rapport_cues.py).

Each scenario is a :class:`~pacelight.sim.call.CallSpec` run through the production analyzer
(:func:`pacelight.analysis.runner.build_analyzer`: activity, pace, tone, cue engine). Nothing is
cached or written to disk. Heavy modules (simulator, analyzer) are imported lazily.

Pace scenarios (English espeak-ng voices; syllable rates measured ≈ 3.8–4.1 syl/s at 120 wpm,
4.6–5.1 at 170, 5.9 at 220, 6.8–7.4 at 260, 8.3 at 300): the customer is slow, normal or fast;
an *adapting* agent speaks at the customer's speed range, a *non-adapting* one ≈ 1.4–1.9× faster
than the customer (its pace ≥ 1.25 × the customer-relative target). Energy scenarios use
tone-labelled clips (manifest arousal) from ``../shared/data`` as turns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

log = logging.getLogger(__name__)

CUSTOMER_WPM = {"slow": (120, 130), "normal": (165, 175), "fast": (215, 225)}
NON_ADAPTING_WPM = {"slow": (235, 250), "normal": (265, 280), "fast": (300, 315)}


@dataclass(frozen=True)
class Scenario:
    name: str
    spec: Any  # pacelight.sim.call.CallSpec
    expect: str  # "pace" / "energy" (cue expected) or "none-pace" / "none-energy" (must not fire)


def pace_scenarios(duration_s: float = 75.0) -> list[Scenario]:
    from pacelight.sim.call import CallSpec

    base = CallSpec(duration_s=duration_s, langs=("en",), sources=("tts",), hold_prob=0.0)
    out = []
    for cls, cust in CUSTOMER_WPM.items():
        out.append(Scenario(f"pace/{cls}-customer/adapting",
                            replace(base, customer_speed_wpm=cust, agent_speed_wpm=cust), "none-pace"))
        out.append(Scenario(f"pace/{cls}-customer/non-adapting",
                            replace(base, customer_speed_wpm=cust, agent_speed_wpm=NON_ADAPTING_WPM[cls]), "pace"))
    return out


def energy_scenarios(duration_s: float = 75.0) -> list[Scenario]:
    from pacelight.sim.call import CallSpec

    clips = CallSpec(duration_s=duration_s, langs=("en",), sources=("clips",), clip_silero=False, hold_prob=0.0,
                     monologue_prob=0.0)
    mixed = replace(clips, sources=("tts", "clips"), clip_prob=1.0, clips_call_prob=1.0)
    return [
        # both parties' turns are high-arousal clips: agitated customer, agent as loud/tense
        Scenario("energy/high-customer/high-agent", replace(clips, clip_arousal=("high",)), "energy"),
        # both low-arousal clips
        Scenario("energy/low-customer/low-agent", replace(clips, clip_arousal=("low",)), "none-energy"),
        # agitated customer (high clips), calm slow espeak agent: nothing for the agent to calm
        Scenario("energy/high-customer/calm-agent",
                 replace(mixed, clip_arousal=("high",), agent_speed_wpm=(130, 145)), "none-energy"),
        # calm customer (low clips), brisk espeak agent (acoustically high): no calm cue either
        Scenario("energy/low-customer/brisk-agent",
                 replace(mixed, clip_arousal=("low",), agent_speed_wpm=(200, 220)), "none-energy"),
    ]


def max_onsets_in_window(onsets: list[float], window_s: float = 60.0) -> int:
    """Most cue onsets within any ``window_s`` span."""
    best, j = 0, 0
    for i, t in enumerate(onsets):
        while onsets[j] <= t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best


def run_call(spec: Any, seed: int, cue_settings: Any = None, compare_fixed: bool = False) -> dict[str, Any]:
    """Simulate one call and analyse it with the production pipeline; returns the cue facts.

    ``compare_fixed``: also analyse the same audio with the fixed-norm pace rule (rapport off) and
    report its pace-cue onsets as ``fixed_pace_onsets``.
    """
    from pacelight.sim.call import simulate_call

    call = simulate_call(spec, seed)
    out = _analyse(call, seed, cue_settings)
    if compare_fixed:
        from pacelight.cues.engine import CueSettings
        from pacelight.cues.rapport import RapportSettings

        fixed = _analyse(call, seed, CueSettings(rapport=RapportSettings(enabled=False)))
        out["fixed_pace_onsets"] = fixed["pace_onsets"]
    return out


def _analyse(call: Any, seed: int, cue_settings: Any) -> dict[str, Any]:
    from pacelight.analysis.pipeline import CallIdentity, PipelineSettings
    from pacelight.analysis.runner import build_analyzer

    lang = call.truth["languages"][0]
    settings = PipelineSettings(language=lang, cues=cue_settings)
    an = build_analyzer(call.rate, settings, CallIdentity(device_id="sim", call_id=f"sim-{seed}"))
    an.feed(call.audio)
    summary = an.finish()
    ons = [c for c in an.cues if c.state == "on"]
    onset_t = [c.t_s for c in ons]
    dur = summary.duration_s
    return {
        "seed": seed,
        "lang": lang,
        "duration_s": dur,
        "speeds_wpm": call.truth["base_speed_wpm"],
        "pace": summary.pace.model_dump(),
        "truth_pace": call.truth["pace"],
        "voices": call.truth["voices"],
        "cues": [(round(c.t_s, 2), c.kind, c.state, c.detail) for c in an.cues],
        "onsets": len(ons),
        "pace_onsets": [c.t_s for c in ons if c.kind == "pace"],
        "energy_onsets": [(c.t_s, c.detail) for c in ons if c.kind == "energy"],
        "first_onset_s": min(onset_t) if onset_t else None,
        "rate_per_min": len(ons) / (dur / 60.0) if dur > 0 else 0.0,
        "max_onsets_60s": max_onsets_in_window(onset_t),
        "rapport": summary.rapport.model_dump() if summary.rapport is not None else None,
        "tone_model": summary.model.tone,
    }
