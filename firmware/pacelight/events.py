"""Typed events that flow one way out of the analysis pipeline.

audio → frames → VAD/echo gating → turns, pace, tone → (these events) → cue engine, LED outputs,
summary. Times are seconds from the start of the call on the frame clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Party = Literal["agent", "customer"]
PARTIES: tuple[Party, Party] = ("agent", "customer")


@dataclass(frozen=True, slots=True)
class Observation:
    """What the cue engine sees after each analysis block (every BLOCK_FRAMES frames).

    ``*_talking`` is the undelayed (provisional) talk state of the latest frame;
    ``overlap_s`` how long both have been talking right now (0 if not overlapping);
    ``overlap_by`` who started the current overlap; ``agent_run_s`` how long the agent has held
    the floor in the current turn (pauses < 0.2 s bridged); ``agent_pause_s`` how long the agent
    has been silent; pace values are rolling syllables/s (None until enough voiced speech);
    arousal values are the latest tone score 0..1 (None when unknown); ``on_hold`` is True while
    the call is on hold / IVR (no cues then).
    """

    t_s: float
    agent_talking: bool
    customer_talking: bool
    overlap_s: float
    overlap_by: Party | None
    agent_run_s: float
    customer_run_s: float
    agent_pause_s: float
    agent_pace_syl_s: float | None = None
    customer_pace_syl_s: float | None = None
    agent_pace_target_syl_s: float | None = None
    agent_arousal: float | None = None
    customer_arousal: float | None = None
    on_hold: bool = False
    # Customer's cumulative pace counters (voiced seconds, calibrated syllables) from the pace
    # estimator; the cue engine derives the customer's pace over the last 60 s of call time from
    # them (pacelight.cues.rapport). None when the pipeline runs without pace.
    customer_voiced_total_s: float | None = None
    customer_syllables_total: float | None = None


@dataclass(frozen=True, slots=True)
class CueChange:
    """A cue switching on or off (recorded in the summary's ``cues``)."""

    t_s: float
    kind: Literal["overtalk", "monologue", "pace", "energy"]
    state: Literal["on", "off"]
    detail: str = ""  # e.g. "calm" / "more-energy" for energy cues


@dataclass(frozen=True, slots=True)
class OverlapEvent:
    """A finished overlap with its classification (CONTRACT section 2)."""

    start_s: float
    end_s: float
    kind: Literal["interruption", "backchannel", "overlap"]
    by: Party


@dataclass(frozen=True, slots=True)
class ToneUpdate:
    party: Party
    t_s: float
    score: float  # 0 = very low arousal, 1 = very high
    label: Literal["low", "neutral", "high"]


@dataclass(frozen=True, slots=True)
class PaceUpdate:
    party: Party
    t_s: float
    rolling_syl_s: float | None
    voiced_s: float
