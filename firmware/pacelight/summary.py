"""The call summary: one schema definition for the device, the host and the tests.

Schema ``pacelight.call-summary/1`` (CONTRACT.md section 3) with additive, optional
extensions; ``/1.1`` adds ``call_state``. Units: seconds, rates per second, ratios 0..1.
Pydantic models validate on both ends: the device before it queues a summary, the host
before it stores one (invalid ones are quarantined with the validation error as reason).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_V1 = "pacelight.call-summary/1"
SCHEMA_V1_1 = "pacelight.call-summary/1.1"
SCHEMAS = (SCHEMA_V1, SCHEMA_V1_1)

# Hard bounds that reject absurd values (also protects the host from hostile payloads).
MAX_CALL_S = 24 * 3600.0
MAX_LIST_ITEMS = 100_000
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

Seconds = Annotated[float, Field(ge=0.0, le=MAX_CALL_S, allow_inf_nan=False)]
Ratio = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Rate = Annotated[float, Field(ge=0.0, le=50.0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
Party = Literal["agent", "customer"]
CueKind = Literal["overtalk", "monologue", "pace", "energy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Talk(_Strict):
    agent_s: Seconds
    customer_s: Seconds
    silence_s: Seconds
    overlap_s: Seconds
    agent_ratio: Ratio | None


class Overtalk(_Strict):
    events: Count
    agent_interruptions: Count
    customer_interruptions: Count
    agent_backchannels: Count
    customer_backchannels: Count


class Pace(_Strict):
    agent_syl_s: Rate | None
    customer_syl_s: Rate | None


class Monologue(_Strict):
    agent_longest_s: Seconds
    customer_longest_s: Seconds


class PartyTone(_Strict):
    low: Ratio | None
    neutral: Ratio | None
    high: Ratio | None
    mean_score: Ratio | None

    @model_validator(mode="after")
    def _fractions(self) -> PartyTone:
        vals = (self.low, self.neutral, self.high)
        if any(v is None for v in vals):
            if not all(v is None for v in vals):
                raise ValueError("tone fractions must be all null or all numbers")
        elif abs(sum(vals) - 1.0) > 0.02:  # type: ignore[arg-type]
            raise ValueError("tone fractions must sum to 1")
        return self

    @classmethod
    def empty(cls) -> PartyTone:
        return cls(low=None, neutral=None, high=None, mean_score=None)


class Tone(_Strict):
    agent: PartyTone
    customer: PartyTone


class Cue(_Strict):
    t: Seconds
    kind: CueKind
    state: Literal["on", "off"]


class ModelInfo(_Strict):
    tone: str = Field(max_length=200)
    pipeline: str = Field(max_length=200)


class Segments(_Strict):
    agent: list[tuple[Seconds, Seconds]] = Field(max_length=MAX_LIST_ITEMS)
    customer: list[tuple[Seconds, Seconds]] = Field(max_length=MAX_LIST_ITEMS)


class Overlap(_Strict):
    start: Seconds
    end: Seconds
    kind: Literal["interruption", "backchannel", "overlap"]
    by: Party


class CallState(_Strict):
    hold_s: Seconds
    ivr_s: Seconds
    mute_s: Seconds


class Latency(_Strict):
    """Extension: agent response latency (gap after the customer stops until the agent starts)."""

    agent_response_median_s: Seconds | None
    agent_responses: Count


class Rapport(_Strict):
    """Extension: pace and energy relative to the customer (docs/summary-extensions.md).

    Energy is acoustic arousal (how activated the voices sound), not an emotion judgement.
    """

    pace_ratio_median: Annotated[float, Field(ge=0.0, le=20.0, allow_inf_nan=False)] | None
    pace_ratio_s: Seconds
    pace_mismatch_share: Ratio | None
    target_follows_customer_share: Ratio | None
    energy_calm_cues: Count
    energy_more_cues: Count


class CallSummary(_Strict):
    schema_: Literal["pacelight.call-summary/1", "pacelight.call-summary/1.1"] = Field(alias="schema")
    call_id: str = Field(pattern=ID_PATTERN)
    device_id: str = Field(pattern=ID_PATTERN)
    started_at: datetime
    duration_s: Seconds
    talk: Talk
    overtalk: Overtalk
    pace: Pace
    monologue: Monologue
    tone: Tone
    cues: list[Cue] = Field(max_length=MAX_LIST_ITEMS)
    model: ModelInfo
    # Optional sections (CONTRACT 3.2, 3.3 and pacelight extensions).
    segments: Segments | None = None
    overlaps: list[Overlap] | None = Field(default=None, max_length=MAX_LIST_ITEMS)
    call_state: CallState | None = None
    latency: Latency | None = None
    partial: bool = False
    rapport: Rapport | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("started_at", mode="before")
    @classmethod
    def _iso(cls, v: object) -> object:
        """ISO 8601 text only (pydantic alone would also read numbers as Unix times)."""
        if isinstance(v, datetime):
            return v
        if not isinstance(v, str):
            raise ValueError("started_at must be an ISO 8601 UTC string, e.g. 2026-11-23T09:00:00Z")
        try:
            return datetime.fromisoformat(v)
        except ValueError:
            raise ValueError(f"started_at is not ISO 8601: {v[:40]!r}") from None

    @field_validator("started_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("started_at must carry a UTC offset (ISO 8601 with Z)")
        return v.astimezone(UTC).replace(microsecond=0)  # whole seconds, as serialised (format_utc)

    @model_validator(mode="after")
    def _call_state_needs_1_1(self) -> CallSummary:
        if self.call_state is not None and self.schema_ == SCHEMA_V1:
            raise ValueError("call_state requires schema pacelight.call-summary/1.1")
        return self

    def to_dict(self) -> dict:
        d = self.model_dump(mode="json", by_alias=True, exclude_none=False)
        for key in ("segments", "overlaps", "call_state", "latency", "rapport"):
            if d.get(key) is None:
                d.pop(key, None)
        if not d.get("partial"):
            d.pop("partial", None)
        d["started_at"] = format_utc(self.started_at)
        return d

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kw)


def format_utc(ts: datetime) -> str:
    """ISO 8601 UTC with a Z suffix, whole seconds."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_summary(data: bytes | str | dict) -> CallSummary:
    """Parse and validate a summary from JSON text/bytes or a dict (raises ValueError)."""
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("summary must be a JSON object")
    return CallSummary.model_validate(data)


def example_summary(call_id: str = "desk-0412-20261123T091502Z-7f3a", device_id: str = "desk-0412",
                    **overrides) -> dict:
    """A valid, typical summary as a dict (``overrides`` replace top-level keys).

    The one sample used by documentation, tests and benchmarks, so a schema change is made here
    once rather than in every copy.
    """
    d = {
        "schema": SCHEMA_V1, "call_id": call_id, "device_id": device_id,
        "started_at": "2026-11-23T09:00:00Z", "duration_s": 182.5,
        "talk": {"agent_s": 80.0, "customer_s": 70.0, "silence_s": 30.0, "overlap_s": 2.5,
                 "agent_ratio": round(80.0 / 150.0, 4)},
        "overtalk": {"events": 3, "agent_interruptions": 1, "customer_interruptions": 1,
                     "agent_backchannels": 2, "customer_backchannels": 4},
        "pace": {"agent_syl_s": 4.6, "customer_syl_s": 4.1},
        "monologue": {"agent_longest_s": 21.0, "customer_longest_s": 14.0},
        "tone": {"agent": {"low": 0.2, "neutral": 0.7, "high": 0.1, "mean_score": 0.45},
                 "customer": {"low": 0.1, "neutral": 0.6, "high": 0.3, "mean_score": 0.55}},
        "cues": [{"t": 40.0, "kind": "pace", "state": "on"}, {"t": 44.0, "kind": "pace", "state": "off"}],
        "model": {"tone": "tone-cnn-int8 1.3.0", "pipeline": "pacelight 0.1.0"},
    }
    d.update(overrides)
    return d
