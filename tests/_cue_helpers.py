"""Scripted Observation timelines for cue-engine tests (50 ms blocks, as the pipeline calls it)."""

from __future__ import annotations

from collections.abc import Callable

from pacelight.cues.engine import CueEngine
from pacelight.events import CueChange, Observation

BLOCK_S = 0.05


def obs(t: float, **kw: object) -> Observation:
    """An Observation at ``t`` with nobody talking, overridden by ``kw``."""
    base: dict[str, object] = dict(t_s=t, agent_talking=False, customer_talking=False, overlap_s=0.0,
                                   overlap_by=None, agent_run_s=0.0, customer_run_s=0.0, agent_pause_s=1.0)
    base.update(kw)
    return Observation(**base)  # type: ignore[arg-type]


def run(engine: CueEngine, t0: float, t1: float, f: Callable[[float], dict[str, object]]) -> list[CueChange]:
    """Feed ``engine`` one observation per block from ``t0`` to ``t1``; ``f(t)`` gives the fields."""
    out: list[CueChange] = []
    for i in range(int(round((t1 - t0) / BLOCK_S))):
        t = round(t0 + i * BLOCK_S, 3)
        out += engine.update(obs(t, **f(t)))
    return out
