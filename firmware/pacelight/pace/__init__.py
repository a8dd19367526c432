"""Speaking pace: streaming syllable-rate estimation and per-language targets.

Pipeline use (one estimator per party)::

    est = SyllableRateEstimator()              # PaceSettings() defaults, calibrated
    est.process(frames, active)                # every block: (n, 160) float32, (n,) bool
    est.rolling_rate_syl_s()                   # last 20 s of voiced speech, None if < 8 s voiced
    est.finish(); est.call_rate_syl_s()        # at the end of the call
    effective_target_syl_s("en", baseline)     # what the pace cue compares against
"""

from pacelight.pace.estimator import (
    CALIBRATION_SCALE,
    PaceSettings,
    SyllableRateEstimator,
    estimate_rate,
)
from pacelight.pace.targets import (
    AgentBaselineStore,
    TargetSettings,
    effective_target_syl_s,
    language_target_syl_s,
)

__all__ = [
    "CALIBRATION_SCALE",
    "AgentBaselineStore",
    "PaceSettings",
    "SyllableRateEstimator",
    "TargetSettings",
    "effective_target_syl_s",
    "estimate_rate",
    "language_target_syl_s",
]
