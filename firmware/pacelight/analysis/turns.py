"""Turn tracking: talk segments, overlaps, monologues and response latency on the frame clock.

Raw talk stretches from :mod:`pacelight.analysis.activity` become final segments once pauses
shorter than ``BRIDGE_S`` are bridged (CONTRACT section 2). Overlaps between final segments are
classified with :mod:`pacelight.analysis.overlaps`. Everything works incrementally; the only
state that grows with the call is the segment list itself (a few bytes per utterance), kept for
the optional ``--segments`` timeline.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np

from pacelight.analysis.overlaps import BACKCHANNEL_MAX_S, attribute, classify
from pacelight.events import OverlapEvent
from pacelight.frames import FRAME_S

BRIDGE_S = 0.2  # pauses shorter than this inside speech are talk (CONTRACT)
MIN_SEGMENT_S = 0.06  # shorter isolated blips are clicks, not talk
MONOLOGUE_GAP_S = 2.0  # a party keeps the floor across pauses up to this long ...
# ... as long as the other party says nothing but backchannels (≤ BACKCHANNEL_MAX_S).
LATENCY_MAX_S = 5.0  # agent response gaps longer than this are not "responses"

BRIDGE_FRAMES = int(round(BRIDGE_S / FRAME_S))
MIN_SEGMENT_FRAMES = int(round(MIN_SEGMENT_S / FRAME_S))

FrameSeg = tuple[int, int]


class Segmenter:
    """Bridges short pauses between raw stretches of one party; emits final segments (frames)."""

    def __init__(self) -> None:
        self.pending: FrameSeg | None = None

    def add(self, raw: list[FrameSeg]) -> list[FrameSeg]:
        out: list[FrameSeg] = []
        for s, e in raw:
            if self.pending is not None and s - self.pending[1] < BRIDGE_FRAMES:
                self.pending = (self.pending[0], max(e, self.pending[1]))
            else:
                self._emit(out)
                self.pending = (s, e)
        return out

    def advance(self, now: int, next_start: int | None) -> list[FrameSeg]:
        """Finalise the pending segment once no stretch can join it any more.

        ``next_start``: the earliest frame a stretch still to come may start at (the detector
        opens a stretch a few frames after its backtracked start, so this can lie before
        ``now``); None means ``now``."""
        out: list[FrameSeg] = []
        nxt = now if next_start is None else min(now, next_start)
        if self.pending is None or nxt - self.pending[1] < BRIDGE_FRAMES:
            return out
        self._emit(out)
        return out

    def flush(self) -> list[FrameSeg]:
        out: list[FrameSeg] = []
        self._emit(out)
        return out

    def provisional_until(self) -> int | None:
        return None if self.pending is None else self.pending[1]

    def _emit(self, out: list[FrameSeg]) -> None:
        if self.pending is not None and self.pending[1] - self.pending[0] >= MIN_SEGMENT_FRAMES:
            out.append(self.pending)
        self.pending = None


@dataclass
class TurnTracker:
    """Collects both parties' final segments and classifies their overlaps as they complete."""

    agent: list[FrameSeg] = field(default_factory=list)
    customer: list[FrameSeg] = field(default_factory=list)
    overlaps: list[OverlapEvent] = field(default_factory=list)
    overlap_frames: int = 0
    _i: int = 0
    _j: int = 0

    def add(self, agent_segs: list[FrameSeg], customer_segs: list[FrameSeg]) -> list[OverlapEvent]:
        self.agent.extend(agent_segs)
        self.customer.extend(customer_segs)
        return self._walk(final=False)

    def finish(self) -> list[OverlapEvent]:
        return self._walk(final=True)

    def _walk(self, final: bool) -> list[OverlapEvent]:
        """Merge-walk both lists; a pair is examined once both segments are final."""
        new: list[OverlapEvent] = []
        A, C = self.agent, self.customer
        while self._i < len(A) and self._j < len(C):
            a, c = A[self._i], C[self._j]
            s, e = max(a[0], c[0]), min(a[1], c[1])
            if e > s:
                by = attribute(a, c)
                intr, oth = (a, c) if by == "agent" else (c, a)
                kind = classify((intr[0] * FRAME_S, intr[1] * FRAME_S), (oth[0] * FRAME_S, oth[1] * FRAME_S))
                ev = OverlapEvent(round(s * FRAME_S, 3), round(e * FRAME_S, 3), kind, by)  # type: ignore[arg-type]
                new.append(ev)
                self.overlap_frames += e - s
            if a[1] <= c[1]:
                self._i += 1
            else:
                self._j += 1
        self.overlaps.extend(new)
        return new

    # ---- summary figures -------------------------------------------------------------------
    def talk_s(self, party: str) -> float:
        segs = self.agent if party == "agent" else self.customer
        return sum(e - s for s, e in segs) * FRAME_S

    def overlap_s(self) -> float:
        return self.overlap_frames * FRAME_S

    def counts(self) -> dict[str, int]:
        c = {"events": len(self.overlaps), "agent_interruptions": 0, "customer_interruptions": 0,
             "agent_backchannels": 0, "customer_backchannels": 0}
        for ov in self.overlaps:
            if ov.kind == "interruption":
                c[f"{ov.by}_interruptions"] += 1
            elif ov.kind == "backchannel":
                c[f"{ov.by}_backchannels"] += 1
        return c

    def longest_monologue_s(self, party: str) -> float:
        mine = self.agent if party == "agent" else self.customer
        theirs = self.customer if party == "agent" else self.agent
        floor_takes = [s for s, e in theirs if (e - s) * FRAME_S > BACKCHANNEL_MAX_S]
        gap = int(round(MONOLOGUE_GAP_S / FRAME_S))
        best = 0
        run_start = run_end = None
        k = 0
        for s, e in mine:
            if run_start is not None:
                while k < len(floor_takes) and floor_takes[k] < run_end:
                    k += 1
                interrupted = k < len(floor_takes) and floor_takes[k] < s
                if s - run_end > gap or interrupted:
                    run_start = None
            if run_start is None:
                run_start = s
            run_end = e
            best = max(best, run_end - run_start)
        return best * FRAME_S

    def agent_response_latencies_s(self) -> list[float]:
        out = []
        j = 0
        for cs, ce in self.customer:
            if (ce - cs) * FRAME_S <= BACKCHANNEL_MAX_S:
                continue
            while j < len(self.agent) and self.agent[j][0] < ce:
                j += 1
            if j < len(self.agent):
                gap = (self.agent[j][0] - ce) * FRAME_S
                if 0 <= gap <= LATENCY_MAX_S:
                    out.append(gap)
        return out

    def latency_median_s(self) -> float | None:
        lat = self.agent_response_latencies_s()
        return round(statistics.median(lat), 3) if lat else None

    def segments_s(self, party: str) -> list[tuple[float, float]]:
        segs = self.agent if party == "agent" else self.customer
        return [(round(s * FRAME_S, 3), round(e * FRAME_S, 3)) for s, e in segs]


class TalkFrames:
    """Per-frame talk flags of one party with pauses < 0.2 s bridged, released with a fixed delay.

    Raw stretches can still change a few hundred ms back (onset backtracking, pause bridging), so
    flags are released ``DELAY_FRAMES`` behind the newest frame, when they are final. Pace and
    tone consume these flags, so "voiced speech" means exactly the talk the summary reports.
    """

    DELAY_FRAMES = 2 * BRIDGE_FRAMES

    def __init__(self) -> None:
        self._raw = np.zeros(0, dtype=bool)  # raw flags for frames [_start, _start + len)
        self._start = 0
        self._emitted = 0
        self._last_active = -(10**9)  # last raw-active frame released so far

    def update(self, closed: list[FrameSeg], open_start: int | None, now: int, final: bool = False) -> np.ndarray:
        """Add this block's raw stretches; return flags for the frames now released (in order)."""
        grow = now - (self._start + len(self._raw))
        if grow > 0:
            self._raw = np.concatenate([self._raw, np.zeros(grow, dtype=bool)])
        for s, e in closed:
            self._raw[max(s - self._start, 0) : max(e - self._start, 0)] = True
        if open_start is not None:
            self._raw[max(open_start - self._start, 0) :] = True
        upto = now if final else max(self._emitted, now - self.DELAY_FRAMES)
        if upto <= self._emitted:
            return np.zeros(0, dtype=bool)
        lo, hi = self._emitted - self._start, upto - self._start
        out = self._bridged(lo, hi)
        self._emitted = upto
        # Keep BRIDGE_FRAMES of history behind the release point.
        drop = max(0, self._emitted - BRIDGE_FRAMES - self._start)
        if drop:
            self._raw = self._raw[drop:]
            self._start += drop
        return out

    def _bridged(self, lo: int, hi: int) -> np.ndarray:
        """Flags of raw frames [lo, hi) with short pauses bridged; updates ``_last_active``."""
        if not self._raw[lo:].any():
            return np.zeros(hi - lo, dtype=bool)  # nothing active from here on: no pause to bridge
        if self._raw[lo:hi].all():
            self._last_active = self._start + hi - 1
            return np.ones(hi - lo, dtype=bool)
        bridged = self._raw.copy()
        act = np.flatnonzero(self._raw)
        if self._last_active > -(10**8):
            act = np.concatenate([[self._last_active - self._start], act])
        if len(act) > 1:
            for g in np.flatnonzero((np.diff(act) > 1) & (np.diff(act) - 1 < BRIDGE_FRAMES)):
                bridged[max(act[g] + 1, 0) : act[g + 1]] = True
        released = np.flatnonzero(self._raw[lo:hi])
        if len(released):
            self._last_active = self._start + lo + int(released[-1])
        return bridged[lo:hi]
