"""Host → device configuration (retained on ``pacelight/<device_id>/config``).

Validated strictly (unknown keys rejected); an invalid config is logged and ignored, the
device keeps its previous settings. For now: targets and thresholds (cue settings overrides).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

SyllableRate = Annotated[float, Field(gt=0.0, le=20.0, allow_inf_nan=False)]
Delay = Annotated[float, Field(ge=0.0, le=600.0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PaceTarget(_Strict):
    min_syl_s: SyllableRate
    max_syl_s: SyllableRate

    @model_validator(mode="after")
    def _ordered(self) -> PaceTarget:
        if self.min_syl_s >= self.max_syl_s:
            raise ValueError("pace_target.min_syl_s must be below max_syl_s")
        return self


class CueOverrides(_Strict):
    """Overrides of the cue engine's defaults; ``None`` keeps the device default."""

    enabled: bool | None = None
    overtalk_after_s: Delay | None = None
    monologue_after_s: Delay | None = None
    pace_window_s: Delay | None = None
    led_brightness: Annotated[float, Field(ge=0.0, le=1.0)] | None = None


class DeviceConfig(_Strict):
    version: Annotated[int, Field(ge=0)] = 0
    pace_target: PaceTarget | None = None
    agent_talk_ratio_max: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    cues: CueOverrides | None = None


def parse_device_config(data: bytes | str | dict) -> DeviceConfig:
    """Validate a config payload (raises ValueError with the reason)."""
    import json

    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"config is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("config must be a JSON object")
    return DeviceConfig.model_validate(data)
