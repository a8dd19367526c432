"""The streaming call analyzer: one code path for the appliance (sound card) and `analyze` (file).

audio (any rate, stereo: 0 agent, 1 customer) → resample once to 16 kHz → fixed 50 ms blocks of
10 ms frames → echo-gated activity per party → segments, overlaps → pace, tone → cue engine →
summary. Blocks are fixed-size, so the result never depends on how the caller chunks its audio.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from pacelight import PIPELINE_ID
from pacelight.analysis.activity import ActivitySettings, EchoGatedActivity, frame_levels_db
from pacelight.analysis.callstate import CallStateSettings, CallStateTotals, CallStateTracker
from pacelight.analysis.resample import StreamingResampler
from pacelight.analysis.turns import BRIDGE_FRAMES, Segmenter, TalkFrames, TurnTracker
from pacelight.events import CueChange, Observation, OverlapEvent
from pacelight.frames import BLOCK_SAMPLES, FRAME_S, FRAME_SAMPLES, SAMPLE_RATE_HZ
from pacelight.pace.estimator import PaceSettings
from pacelight.summary import (
    SCHEMA_V1,
    SCHEMA_V1_1,
    CallState,
    CallSummary,
    Cue,
    Latency,
    ModelInfo,
    Monologue,
    Overlap,
    Overtalk,
    Pace,
    PartyTone,
    Rapport,
    Segments,
    Talk,
    Tone,
)

log = logging.getLogger(__name__)

NO_TONE_MODEL = "none"


@dataclass(frozen=True)
class PipelineSettings:
    activity: ActivitySettings = field(default_factory=ActivitySettings)
    language: str = "en"
    # Agent's own pace norm (syl/s) learned over their first calls; None → the language norm.
    agent_pace_baseline_syl_s: float | None = None
    cues: object | None = None  # pacelight.cues.engine.CueSettings; None → defaults
    # Syllable-rate estimator ([pipeline.pace], e.g. detector = "peaks"; pacelight.pace.estimator).
    pace: PaceSettings = field(default_factory=PaceSettings)
    tone_fresh_s: float = 3.0  # a tone estimate older than this is no longer "current" for cues
    # Hold music, IVR, tones, mute (analysis/callstate.py; schema /1.1 with call_state); None or
    # enabled = false → off (schema /1). Normal calls are unchanged with it on (callstate_accuracy).
    call_state: CallStateSettings | None = field(default_factory=CallStateSettings)


@dataclass(frozen=True)
class CallIdentity:
    device_id: str = "offline"
    call_id: str | None = None
    started_at: datetime | None = None


def make_call_id(device_id: str, started_at: datetime, salt: str = "") -> str:
    """``<device>-<UTC start>-<4 hex>``: unique per device and start, stable for one call."""
    stamp = started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    h = hashlib.sha256(f"{device_id}|{stamp}|{salt}".encode()).hexdigest()[:4]
    return f"{device_id}-{stamp}-{h}"


class CallAnalyzer:
    """Analyse one call as a stream. ``feed`` any number of (n, 2) float32 chunks, then ``finish``."""

    def __init__(
        self,
        input_rate_hz: int,
        settings: PipelineSettings | None = None,
        identity: CallIdentity | None = None,
        cue_engine=None,
        tone_factory: Callable[[str], object] | None = None,
        pace_factory: Callable[[str], object] | None = None,
        on_cue: Callable[[CueChange], None] | None = None,
        tone_gate: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings or PipelineSettings()
        self.identity = identity or CallIdentity()
        self.input_rate_hz = input_rate_hz
        self._resampler = StreamingResampler(input_rate_hz, SAMPLE_RATE_HZ, 2)
        self._pending = np.zeros((0, 2), dtype=np.float32)
        self._activity = EchoGatedActivity(self.settings.activity)
        cs = self.settings.call_state
        self._callstate = CallStateTracker(cs) if cs is not None and cs.enabled else None
        self._callstate_totals: CallStateTotals | None = None
        self._segmenters = (Segmenter(), Segmenter())
        # Pace and tone see frames with their final talk flags, TalkFrames.DELAY_FRAMES late.
        self._talk_frames = (TalkFrames(), TalkFrames())
        self._frame_buf = np.zeros((0, 2, FRAME_SAMPLES), dtype=np.float32)
        self.tracker = TurnTracker()
        self._n_in = 0
        self._frame = 0
        self._cue_engine = cue_engine
        self._on_cue = on_cue
        self.cues: list[CueChange] = []
        self._pace = tuple(pace_factory(p) for p in ("agent", "customer")) if pace_factory else None
        self._tone = tuple(tone_factory(p) for p in ("agent", "customer")) if tone_factory else None
        self.tone_updates: list = []
        self._arousal: list = [None, None]  # latest ToneUpdate per party
        # Overload control: while tone_gate() is True, tone inference is skipped (frames passed as
        # inactive, so feature state and timing stay consistent); VAD and turns never are.
        self._tone_gate = tone_gate
        self.tone_skipped_blocks = 0
        self._pace_target = _pace_target(self.settings)
        # Provisional floor state for the cue engine.
        self._run_start = [None, None]
        self._last_active = [-(10**9), -(10**9)]
        self._overlap_start: int | None = None
        self._overlap_by: str | None = None

    # ---- streaming ----------------------------------------------------------------------------
    def feed(self, audio: np.ndarray) -> list[CueChange]:
        """Add audio (n, 2) at the input rate; returns cue changes decided meanwhile."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 1:
            audio = np.stack([audio, np.zeros_like(audio)], axis=1)
        self._n_in += len(audio)
        out = self._resampler.process(audio)
        return self._consume(out, final=False)

    def _consume(self, samples: np.ndarray, final: bool) -> list[CueChange]:
        buf = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        changes: list[CueChange] = []
        n_blocks = len(buf) // BLOCK_SAMPLES
        for b in range(n_blocks):
            changes += self._block(buf[b * BLOCK_SAMPLES : (b + 1) * BLOCK_SAMPLES])
        rest = buf[n_blocks * BLOCK_SAMPLES :]
        if final and len(rest):
            n_frames = -(-len(rest) // FRAME_SAMPLES)
            padded = np.zeros((n_frames * FRAME_SAMPLES, 2), dtype=np.float32)
            padded[: len(rest)] = rest
            changes += self._block(padded)
            rest = rest[:0]
        self._pending = np.array(rest, copy=True)
        return changes

    def _block(self, block: np.ndarray) -> list[CueChange]:
        n = len(block) // FRAME_SAMPLES
        frames = block.reshape(n, FRAME_SAMPLES, 2).transpose(0, 2, 1)  # (n, 2, 160)
        if self._callstate is not None:  # music, tones, IVR never count as talk
            levels = frame_levels_db(frames)  # once per block, for both stages
            self._activity.process(frames, allowed=self._callstate.process(frames, levels), levels=levels)
            self._callstate.observe_agent(self._activity.channels[0].talking, n)
        else:
            self._activity.process(frames)
        now = self._frame + n
        final, closed = [], []
        for c, (ch, seg) in enumerate(zip(self._activity.channels, self._segmenters, strict=True)):
            raw = ch.take_closed()
            nxt = ch.earliest_start()
            if self._callstate is not None:  # hold/IVR/tones recognised since: not talk
                raw = self._callstate.trim_customer(raw) if c else self._callstate.trim_agent(raw)
                nxt = self._callstate.held_start(nxt) if c else nxt  # customer stretches held back
            closed.append(raw)
            final.append(seg.add(raw) + seg.advance(now, nxt))
        self.tracker.add(final[0], final[1])
        talking = [self._talking(c, now) for c in (0, 1)]
        self._release(frames, closed, now, final=False)
        self._frame = now
        changes: list[CueChange] = []
        if self._cue_engine is not None:
            changes = list(self._cue_engine.update(self._observe(talking, now)))
            for ch_ in changes:
                self.cues.append(ch_)
                if self._on_cue is not None:
                    self._on_cue(ch_)
        return changes

    def _release(self, frames: np.ndarray | None, closed: list, now: int, final: bool) -> None:
        """Feed pace and tone the frames whose talk flags are final."""
        chans = self._activity.channels
        masks = [
            self._talk_frames[c].update(closed[c], None if final else chans[c].hyst.open_start, now, final)
            for c in (0, 1)
        ]
        if frames is not None:
            self._frame_buf = np.concatenate([self._frame_buf, frames])
        k = len(masks[0])
        if not k:
            return
        out, self._frame_buf = self._frame_buf[:k], self._frame_buf[k:]
        skip_tone = self._tone is not None and self._tone_gate is not None and self._tone_gate()
        self.tone_skipped_blocks += skip_tone
        for c in (0, 1):
            if self._pace is not None:
                self._pace[c].process(out[:, c], masks[c])
            if self._tone is not None:
                mask = np.zeros_like(masks[c]) if skip_tone else masks[c]
                ups = self._tone[c].process(out[:, c], mask)
                if ups:
                    self.tone_updates += ups
                    self._arousal[c] = ups[-1]

    def _talking(self, c: int, now: int) -> bool:
        ch = self._activity.channels[c]
        if ch.talking:
            self._last_active[c] = now
            return True
        until = self._segmenters[c].provisional_until()
        return until is not None and now - until < BRIDGE_FRAMES

    def _observe(self, talking: list[bool], now: int) -> Observation:
        for c in (0, 1):
            if talking[c]:
                if self._run_start[c] is None:
                    self._run_start[c] = now
            elif now - self._last_active[c] > int(2.0 / FRAME_S):
                self._run_start[c] = None
        both = talking[0] and talking[1]
        if both and self._overlap_start is None:
            self._overlap_start = now
            rs = self._run_start
            self._overlap_by = "agent" if (rs[0] or now) > (rs[1] or now) else "customer"
        elif not both:
            self._overlap_start, self._overlap_by = None, None
        t = now * FRAME_S
        pace = [p.rolling_rate_syl_s() for p in self._pace] if self._pace else [None, None]
        cust_pace = self._pace[1] if self._pace else None  # cumulative counters for the rapport cues
        arousal = [
            u.score if u is not None and t - u.t_s <= self.settings.tone_fresh_s else None for u in self._arousal
        ]
        return Observation(
            t_s=t,
            agent_talking=talking[0],
            customer_talking=talking[1],
            overlap_s=(now - self._overlap_start) * FRAME_S if self._overlap_start is not None else 0.0,
            overlap_by=self._overlap_by,  # type: ignore[arg-type]
            agent_run_s=(now - self._run_start[0]) * FRAME_S if self._run_start[0] is not None else 0.0,
            customer_run_s=(now - self._run_start[1]) * FRAME_S if self._run_start[1] is not None else 0.0,
            agent_pause_s=0.0 if talking[0] else (now - self._last_active[0]) * FRAME_S,
            agent_pace_syl_s=pace[0],
            customer_pace_syl_s=pace[1],
            agent_pace_target_syl_s=self._pace_target,
            agent_arousal=arousal[0],
            customer_arousal=arousal[1],
            customer_voiced_total_s=cust_pace.voiced_s if cust_pace is not None else None,
            customer_syllables_total=cust_pace.syllables if cust_pace is not None else None,
            on_hold=self._callstate is not None and self._callstate.quiet_for_cues,
        )

    # ---- end of call -------------------------------------------------------------------------
    def finish(self, partial: bool = False, with_segments: bool = False) -> CallSummary:
        self._consume(self._resampler.flush(), final=True)
        final, closed = [], []
        for c, (ch, seg) in enumerate(zip(self._activity.channels, self._segmenters, strict=True)):
            raw = ch.flush()
            if self._callstate is not None:
                raw = self._callstate.trim_customer(raw, final=True) if c else self._callstate.trim_agent(raw)
            closed.append(raw)
            final.append(seg.add(raw) + seg.flush())
        self.tracker.add(final[0], final[1])
        self.tracker.finish()
        self._release(None, closed, self._frame, final=True)
        if self._callstate is not None:
            self._callstate_totals = self._callstate.finish()
        if self._pace is not None:
            for p in self._pace:
                p.finish()
        if self._cue_engine is not None:
            for ch_ in self._cue_engine.finish(self._frame * FRAME_S):
                self.cues.append(ch_)
                if self._on_cue is not None:
                    self._on_cue(ch_)
        return self._summary(partial, with_segments)

    @property
    def duration_s(self) -> float:
        return self._n_in / self.input_rate_hz

    def _summary(self, partial: bool, with_segments: bool) -> CallSummary:
        tr = self.tracker
        duration = round(self.duration_s, 3)
        agent_s, customer_s, overlap_s = tr.talk_s("agent"), tr.talk_s("customer"), tr.overlap_s()
        union = agent_s + customer_s - overlap_s
        ratio = agent_s / (agent_s + customer_s) if agent_s + customer_s > 0 else None
        ident = self.identity
        started = ident.started_at or datetime.now(UTC)
        call_id = ident.call_id or make_call_id(ident.device_id, started)
        pace = (
            [p.call_rate_syl_s() for p in self._pace] if self._pace is not None else [None, None]
        )
        tone = (
            [t.party_tone() for t in self._tone] if self._tone is not None else [PartyTone.empty()] * 2
        )
        tone_name = self._tone[0].model_name() if self._tone is not None else NO_TONE_MODEL
        lat = tr.agent_response_latencies_s()
        fields: dict = dict(
            schema=SCHEMA_V1,
            call_id=call_id,
            device_id=ident.device_id,
            started_at=started,
            duration_s=duration,
            talk=Talk(
                agent_s=round(agent_s, 3),
                customer_s=round(customer_s, 3),
                silence_s=round(max(0.0, duration - union), 3),
                overlap_s=round(overlap_s, 3),
                agent_ratio=None if ratio is None else round(ratio, 4),
            ),
            overtalk=Overtalk(**tr.counts()),
            pace=Pace(agent_syl_s=_r(pace[0], 2), customer_syl_s=_r(pace[1], 2)),
            monologue=Monologue(
                agent_longest_s=round(tr.longest_monologue_s("agent"), 3),
                customer_longest_s=round(tr.longest_monologue_s("customer"), 3),
            ),
            tone=Tone(agent=tone[0], customer=tone[1]),
            cues=[Cue(t=round(c.t_s, 2), kind=c.kind, state=c.state) for c in self.cues],
            model=ModelInfo(tone=tone_name, pipeline=PIPELINE_ID),
            latency=Latency(agent_response_median_s=tr.latency_median_s(), agent_responses=len(lat)),
            partial=partial,
        )
        rapport = getattr(self._cue_engine, "rapport_summary", None)
        rapport = rapport() if callable(rapport) else None
        if rapport is not None:
            fields["rapport"] = Rapport(**rapport)
        if self._callstate_totals is not None:
            t = self._callstate_totals
            fields["schema"] = SCHEMA_V1_1
            fields["call_state"] = CallState(hold_s=t.hold_s, ivr_s=t.ivr_s, mute_s=t.mute_s)
        if with_segments:
            fields["segments"] = Segments(agent=tr.segments_s("agent"), customer=tr.segments_s("customer"))
            fields["overlaps"] = [_overlap(o) for o in tr.overlaps]
        return CallSummary(**fields)


def _pace_target(settings: PipelineSettings) -> float | None:
    try:
        from pacelight.pace.targets import effective_target_syl_s
    except ImportError:
        return None
    return effective_target_syl_s(settings.language, settings.agent_pace_baseline_syl_s)


def _r(v: float | None, nd: int) -> float | None:
    return None if v is None else round(float(v), nd)


def _overlap(o: OverlapEvent) -> Overlap:
    return Overlap(start=o.start_s, end=o.end_s, kind=o.kind, by=o.by)
