"""Cue decisions (:mod:`.engine`, pure; customer-relative rules in :mod:`.rapport`) and the LED
outputs that show them (:mod:`.outputs`)."""

from pacelight.cues.engine import CUE_KINDS, CueEngine, CueSettings
from pacelight.cues.rapport import RapportSettings

__all__ = ["CUE_KINDS", "CueEngine", "CueSettings", "RapportSettings"]
