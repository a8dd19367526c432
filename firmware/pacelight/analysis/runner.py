"""Assemble the full pipeline (activity, pace, tone, cues) and run it over a WAV file.

`pacelight analyze`, `pacelight edge replay` and the benchmarks all build their analyzer here,
so the offline and live paths cannot diverge.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pacelight.analysis.pipeline import CallAnalyzer, CallIdentity, PipelineSettings, make_call_id
from pacelight.audio.wavfile import WavInfo, iter_blocks, probe
from pacelight.errors import PacelightError
from pacelight.events import CueChange
from pacelight.summary import CallSummary

log = logging.getLogger(__name__)


def build_analyzer(
    input_rate_hz: int,
    settings: PipelineSettings | None = None,
    identity: CallIdentity | None = None,
    *,
    with_tone: bool = True,
    with_pace: bool = True,
    with_cues: bool = True,
    on_cue: Callable[[CueChange], None] | None = None,
    tone_gate: Callable[[], bool] | None = None,
) -> CallAnalyzer:
    """The production analyzer with every stage that is available in this installation."""
    settings = settings or PipelineSettings()
    return CallAnalyzer(
        input_rate_hz,
        settings,
        identity,
        cue_engine=_cue_engine(settings) if with_cues else None,
        tone_factory=_tone_factory() if with_tone else None,
        pace_factory=_pace_factory(settings) if with_pace else None,
        on_cue=on_cue,
        tone_gate=tone_gate,
    )


def _cue_engine(settings: PipelineSettings):
    try:
        from pacelight.cues.engine import CueEngine
    except ImportError:
        return None
    return CueEngine(settings.cues) if settings.cues is not None else CueEngine()


def _pace_factory(settings: PipelineSettings):
    try:
        from pacelight.pace.estimator import SyllableRateEstimator
    except ImportError:
        return None
    return lambda party: SyllableRateEstimator(settings.pace)


_MODEL_CACHE: dict[str, object] = {}


def _tone_factory():
    """Per-party ToneTrackers sharing one loaded model (loaded once per process)."""
    try:
        from pacelight.tone.model import ToneModel
        from pacelight.tone.tracker import ToneTracker
    except ImportError:
        return None
    model = _MODEL_CACHE.get("default")
    if model is None:
        try:
            model = ToneModel()
        except PacelightError as exc:
            log.warning("tone disabled: %s", exc)
            return None
        _MODEL_CACHE["default"] = model
    return lambda party: ToneTracker(model, party=party)


def file_identity(info: WavInfo, device_id: str = "offline") -> CallIdentity:
    """A stable identity for a call file: start = file mtime − duration, id salted by content."""
    st = info.path.stat()
    started = datetime.fromtimestamp(st.st_mtime, tz=UTC) - timedelta(seconds=info.duration_s)
    started = started.replace(microsecond=0)
    h = hashlib.sha256()
    with info.path.open("rb") as f:
        h.update(f.read(1 << 16))
    h.update(str(st.st_size).encode())
    return CallIdentity(device_id, make_call_id(device_id, started, h.hexdigest()), started)


def analyze_file(
    path: str | Path,
    settings: PipelineSettings | None = None,
    identity: CallIdentity | None = None,
    with_segments: bool = False,
    chunk_s: float = 1.0,
    **stages,
) -> CallSummary:
    info = probe(path)
    identity = identity or file_identity(info)
    analyzer = build_analyzer(info.rate_hz, settings, identity, **stages)
    for block in iter_blocks(info, chunk_s):
        analyzer.feed(block)
    return analyzer.finish(with_segments=with_segments)
