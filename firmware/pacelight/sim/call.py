"""Two-party call simulator with exact ground truth (``pacelight simulate``).

``simulate_call(spec, seed)`` builds one call: alternating agent/customer turns with natural gaps,
monologues, backchannels inside the other's long turns, interruptions (the other is cut with a
short fade), plain overlaps and silent hold stretches; speech from espeak-ng (several voices and
rates per language) and optionally real clips. Truth (segments, overlaps, talk, overtalk, pace)
is computed from the CLEAN per-party tracks before any channel effects; then the channel effects
(:mod:`pacelight.sim.effects`) make the stereo WAV (ch0 agent mic, ch1 customer receive path).
Every random choice comes from one ``numpy.random.Generator(seed)`` (call-state content from its
own child stream of the same seed): same seed, same bytes.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pacelight.frames import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE_HZ
from pacelight.sim import content, effects
from pacelight.sim.syllables import count_syllables
from pacelight.sim.tts import render_tts

log = logging.getLogger(__name__)

Party = Literal["agent", "customer"]
OUTPUT_RATES_HZ = (8000, 16000, 44100, 48000)
BRIDGE_FRAMES = 20  # pauses shorter than 0.2 s inside speech are bridged (CONTRACT section 2)
ACTIVE_DB_BELOW_PEAK = 40.0
REF_LEVEL_DB = -20.0  # every clean utterance is normalised to this active level
PEAK_LIMIT = 0.98
SR = SAMPLE_RATE_HZ


@dataclass(frozen=True)
class RateChange:
    """Multiply one party's espeak speed by ``factor`` for turns starting at or after ``at_s``."""

    party: Party
    at_s: float
    factor: float

    def __post_init__(self) -> None:
        if self.party not in ("agent", "customer"):
            raise ValueError(f"RateChange.party must be agent or customer, not {self.party!r}")
        if not 0.5 <= self.factor <= 2.0:
            raise ValueError("RateChange.factor must be within 0.5..2.0")
        if self.at_s < 0:
            raise ValueError("RateChange.at_s must be >= 0")


@dataclass(frozen=True)
class CallSpec:
    """What to simulate. Speeds are espeak-ng ``-s`` words per minute (ranges inclusive)."""

    duration_s: float = 90.0
    langs: tuple[str, ...] = ("en", "ru", "cmn")
    rate_hz: int = 16000
    agent_speed_wpm: tuple[int, int] = (140, 220)
    customer_speed_wpm: tuple[int, int] = (140, 220)
    speed_jitter_wpm: int = 10  # per-turn jitter around the party's base speed (multiples of 5)
    rate_change: RateChange | None = None
    sources: tuple[str, ...] = ("tts", "clips")
    clip_prob: float = 0.3  # share of customer turns taken from real clips (when "clips" in sources)
    clips_call_prob: float = 0.5  # with tts+clips: share of calls that use clips at all (others: tts only)
    clip_corpora: tuple[str, ...] = ("emodb", "ravdess")
    clip_arousal: tuple[str, ...] | None = None  # e.g. ("high",) for the energy-cue check
    clip_silero: bool = True  # also use excerpts of the multilingual silero clips (syllables unknown)
    effects: bool = True
    monologue_prob: float = 0.12
    interruption_prob: float = 0.12
    overlap_prob: float = 0.1
    hold_prob: float = 0.5  # chance that the call has one silent hold stretch of 5–20 s
    backchannels_per_s: float = 1 / 7  # inside the other's turns of 3 s or more
    call_state: bool = False  # music on hold, IVR, DTMF, ringback/busy, agent mute (see callstate)
    # With call_state: False leaves out every call-state sound (and its truth) but keeps the same
    # schedule, levels, noise and babble — the fair "same call without call-state content".
    call_state_sounds: bool = True
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if not 5.0 <= self.duration_s <= 4 * 3600:
            raise ValueError("duration_s must be within 5 s .. 4 h")
        bad = [lang for lang in self.langs if lang not in content.LANGS]
        if not self.langs or bad:
            raise ValueError(f"langs must be a non-empty subset of {content.LANGS}, got {self.langs}")
        if self.rate_hz not in OUTPUT_RATES_HZ:
            raise ValueError(f"rate_hz must be one of {OUTPUT_RATES_HZ}")
        for name in ("agent_speed_wpm", "customer_speed_wpm"):
            lo, hi = getattr(self, name)
            if not 80 <= lo <= hi <= 450:
                raise ValueError(f"{name} must satisfy 80 <= lo <= hi <= 450")
        if not set(self.sources) <= {"tts", "clips"} or not self.sources:
            raise ValueError("sources must be a non-empty subset of {'tts', 'clips'}")
        for name in ("clip_prob", "clips_call_prob", "monologue_prob", "interruption_prob", "overlap_prob", "hold_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.interruption_prob + self.overlap_prob > 0.9:
            raise ValueError("interruption_prob + overlap_prob must be <= 0.9")


@dataclass
class Utterance:
    party: Party
    start: int  # sample index on the 16 kHz clean timeline
    audio: np.ndarray
    kind: str
    lang: str
    voice: str | None = None
    speed: int | None = None
    pitch: int | None = None
    syllables: int | None = None
    text: str | None = None
    clip: str | None = None
    cut: bool = False
    syllables_estimated: bool = False

    @property
    def end(self) -> int:
        return self.start + self.audio.size

    def as_truth(self) -> dict[str, Any]:
        d: dict[str, Any] = {"party": self.party, "start": round(self.start / SR, 3),
                             "end": round(self.end / SR, 3), "lang": self.lang, "voice": self.voice,
                             "speed": self.speed, "pitch": self.pitch, "syllables": self.syllables,
                             "kind": self.kind}
        if self.clip is not None:
            d["clip"] = self.clip
        else:
            d["text"] = self.text
        if self.cut:
            d["cut"] = True
            d["syllables_estimated"] = self.syllables_estimated
        return d


@dataclass
class SimulatedCall:
    audio: np.ndarray  # (n, 2) float32 at ``rate``: ch0 agent mic, ch1 customer receive path
    rate: int
    truth: dict[str, Any]
    clean: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 2), np.float32))  # 16 kHz


# ----------------------------------------------------------------------------------------- helpers
def _trim(x: np.ndarray, rel_db: float = 50.0) -> np.ndarray:
    """Drop leading/trailing near-silence (espeak-ng pads its renders)."""
    a = np.abs(x)
    if a.size == 0 or a.max() == 0:
        return x[:0]
    idx = np.flatnonzero(a > a.max() * 10 ** (-rel_db / 20))
    lo = max(0, idx[0] - 80)
    hi = min(x.size, idx[-1] + 160)
    return x[lo:hi]


def _normalise(x: np.ndarray) -> np.ndarray:
    lvl = effects.active_level_db(x)
    return (x * effects.db(REF_LEVEL_DB - lvl)).astype(np.float32)


def _fade(x: np.ndarray, fade_s: float = 0.01) -> np.ndarray:
    n = min(int(fade_s * SR), x.size // 2)
    if n > 0:
        x = x.copy()
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def _utt_threshold(e: np.ndarray) -> float:
    """Activity threshold of one utterance: peak − 40 dB, or 12 dB above its quiet floor if higher."""
    if e.size == 0:
        return np.inf
    # The floor rule must never rise above peak − 20 dB: a short, steady utterance ("mm", "ng4")
    # has its 10th percentile close to its peak and would otherwise count as silent.
    floor = min(np.percentile(e, 10) * 10 ** 1.2, e.max() * 10 ** -2.0)
    return float(max(e.max() * 10 ** (-ACTIVE_DB_BELOW_PEAK / 10), floor, 1e-10))


def _active_count(x: np.ndarray) -> int:
    e = effects.frame_energy(x)
    return int(np.count_nonzero(e > _utt_threshold(e)))


def _bridge(active: np.ndarray, max_gap: int = BRIDGE_FRAMES) -> np.ndarray:
    """Fill inactive runs shorter than ``max_gap`` frames that lie between active frames."""
    act = active.copy()
    idx = np.flatnonzero(act)
    if idx.size < 2:
        return act
    gaps = np.diff(idx)
    for i in np.flatnonzero((gaps > 1) & (gaps - 1 < max_gap)):
        act[idx[i] + 1: idx[i + 1]] = True
    return act


def _segments(active: np.ndarray) -> list[list[float]]:
    d = np.diff(np.concatenate(([0], active.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [[round(s * FRAME_S, 3), round(e * FRAME_S, 3)] for s, e in zip(starts, ends, strict=True)]


# ----------------------------------------------------------------------------------------- builder
class _Builder:
    def __init__(self, spec: CallSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        # Call-state content (pacelight.sim.callstate) draws from its own child stream: self.rng's
        # draws (conversation, levels, noise, babble) are the same with and without it.
        self.cs_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        rng = self.rng
        self.lang = str(rng.choice(spec.langs))
        voices = content.VOICES[self.lang]
        vi = rng.permutation(len(voices))
        self.voice = {"agent": voices[vi[0]], "customer": voices[vi[1]]}
        self.pitch = {"agent": int(rng.integers(30, 71)), "customer": int(rng.integers(30, 71))}
        self.base_speed = {p: int(5 * round(rng.integers(lo, hi + 1) / 5))
                           for p, (lo, hi) in (("agent", spec.agent_speed_wpm),
                                               ("customer", spec.customer_speed_wpm))}
        self.n = int(round(spec.duration_s * 100)) * FRAME_SAMPLES
        self.clips = None
        use_clips = "clips" in spec.sources and ("tts" not in spec.sources or rng.random() < spec.clips_call_prob)
        self.sources = ("tts",) if not use_clips else spec.sources
        if use_clips:
            from pacelight.sim import clips as clipmod

            root = Path(spec.data_dir) if spec.data_dir else None
            self.clipmod, self.clip_root = clipmod, root
            self.clips = clipmod.select_clips(spec.clip_corpora, spec.clip_arousal, root)
        self.utts: list[Utterance] = []
        self.holds: list[tuple[int, int]] = []
        # Set by pacelight.sim.callstate before scheduling (room for ringback/IVR and a busy tone).
        self.start_offset = 0
        self.end_reserve = 0
        self.force_hold = False

    # -- rendering
    def speed_for(self, party: Party, t_s: float, rng: np.random.Generator | None = None) -> int:
        lo, hi = getattr(self.spec, f"{party}_speed_wpm")
        j = self.spec.speed_jitter_wpm // 5
        s = self.base_speed[party] + 5 * int((rng or self.rng).integers(-j, j + 1))
        s = int(np.clip(s, lo, hi))
        rc = self.spec.rate_change
        if rc is not None and rc.party == party and t_s >= rc.at_s:
            s = int(round(s * rc.factor))
        return int(np.clip(s, 80, 450))

    def tts(self, text: str, voice: str, speed: int, pitch: int | None) -> np.ndarray:
        return _normalise(_fade(_trim(render_tts(text, voice, speed, pitch))))

    def tts_turn(self, party: Party, t_s: float, monologue: bool, first: bool, after_hold: bool
                 ) -> Utterance:
        rng = self.rng
        pool = content.AGENT_SENTENCES[self.lang] if party == "agent" else content.CUSTOMER_SENTENCES[self.lang]
        target_s = float(rng.uniform(20, 40)) if monologue else 0.0
        n_sent = int(rng.integers(1, 4))
        speed = self.speed_for(party, t_s)
        voice, pitch = self.voice[party], self.pitch[party]
        texts: list[str] = []
        if first and party == "agent":
            texts = [pool[0], pool[1]]
        elif after_hold and party == "agent":
            texts = [content.HOLD_SENTENCE[self.lang]]
        pieces: list[np.ndarray] = []
        total = 0
        spoken = 0
        while True:
            if len(texts) <= spoken:
                texts.append(str(pool[int(rng.integers(0, len(pool)))]))
            x = self.tts(texts[spoken], voice, speed, pitch)
            if pieces:
                gap = np.zeros(int(rng.uniform(0.12, 0.6) * SR), np.float32)
                pieces.append(gap)
                total += gap.size
            pieces.append(x)
            total += x.size
            spoken += 1
            if monologue and total / SR < target_s:
                continue
            if not monologue and spoken < max(n_sent, len(texts)):
                continue
            break
        texts = texts[:spoken]
        syl = sum(count_syllables(t, self.lang, voice) for t in texts)
        return Utterance(party, 0, np.concatenate(pieces), "turn", self.lang, voice, speed, pitch, syl,
                         " ".join(texts))

    def clip_turn(self, party: Party, monologue: bool) -> Utterance:
        rng = self.rng
        cm = self.clipmod
        if self.spec.clip_silero and (monologue or rng.random() < 0.2):
            dur = float(rng.uniform(20, 40)) if monologue else float(rng.uniform(2.5, 7.0))
            silero_lang = self.lang if self.lang in cm.SILERO_FILES else str(rng.choice(list(cm.SILERO_FILES)))
            name, x = cm.silero_chunk(silero_lang, rng, dur, self.clip_root)
            return Utterance(party, 0, _normalise(_fade(x, 0.03)), "turn", silero_lang, clip=name)
        k = int(rng.integers(1, 4)) if not monologue else 12
        pieces, names, syls, langs = [], [], [], set()
        for i in range(k):
            c = self.clips[int(rng.integers(0, len(self.clips)))]
            if i:
                pieces.append(np.zeros(int(rng.uniform(0.25, 0.7) * SR), np.float32))
            pieces.append(_normalise(_fade(_trim(np.array(cm.load_clip(c.path, self.clip_root)), 45.0))))
            names.append(c.path)
            syls.append(c.syllables)
            langs.add(c.language)
        syl = None if any(s is None for s in syls) else int(sum(syls))  # type: ignore[arg-type]
        return Utterance(party, 0, np.concatenate(pieces), "turn", "+".join(sorted(langs)), syllables=syl,
                         clip=" ".join(names))

    def make_turn(self, party: Party, t_s: float, first: bool, after_hold: bool) -> Utterance:
        rng = self.rng
        monologue = (not first) and rng.random() < self.spec.monologue_prob
        src = self.spec.sources
        use_clip = self.clips is not None and not first and not after_hold and (
            "tts" not in src or (party == "customer" and rng.random() < self.spec.clip_prob))
        if use_clip:
            return self.clip_turn(party, monologue)
        return self.tts_turn(party, t_s, monologue, first, after_hold)

    # -- scheduling
    def schedule(self) -> None:
        rng, spec = self.rng, self.spec
        end_limit = self.n - int(0.3 * SR) - self.end_reserve
        t = self.start_offset + int(rng.uniform(0.3, 1.0) * SR)
        want_hold = rng.random() < spec.hold_prob or self.force_hold
        span = (self.n - self.end_reserve - self.start_offset) / SR
        hold_at = self.start_offset / SR + float(rng.uniform(0.2, 0.6)) * span if want_hold else None
        party: Party = "agent"
        prev: Utterance | None = None
        after_hold = False
        while True:
            u = self.make_turn(party, (prev.end if prev is not None else t) / SR, prev is None, after_hold)
            after_hold = False
            kind = "turn"
            own_end = max((v.end for v in self.utts if v.party == party), default=0)
            pending_cut = None
            if prev is None:
                start = t
            else:
                r = rng.random()
                p_dur = prev.audio.size / SR
                u_dur = u.audio.size / SR
                room_s = (end_limit - prev.end) / SR - 6.0  # leave time for the agent's return
                if hold_at is not None and prev.end / SR >= hold_at and not self.holds and party == "customer" \
                        and room_s >= 6.0:
                    # Hold stretch: both silent; the agent comes back first.
                    h0 = prev.end + int(rng.uniform(0.3, 1.0) * SR)
                    h1 = h0 + int(rng.uniform(5.0, min(20.0, room_s - 1.0)) * SR)
                    self.holds.append((h0, h1))
                    party = "agent"
                    u = self.make_turn(party, h1 / SR, False, True)
                    start = h1 + int(rng.uniform(0.2, 0.8) * SR)
                elif r < spec.interruption_prob and p_dur >= 3.5 and u_dur >= 2.0:
                    earliest = max(1.0, (own_end + int(0.3 * SR) - prev.start) / SR)
                    tb = prev.start + int(rng.uniform(earliest, max(earliest, p_dur - 2.0)) * SR)
                    if tb <= prev.end - 2 * SR:
                        pending_cut = tb + int(rng.uniform(0.3, 1.8) * SR)
                        start, kind = tb, "interruption"
                    else:
                        start = prev.end + int(rng.uniform(0.2, 1.5) * SR)
                elif (r < spec.interruption_prob + spec.overlap_prob and p_dur >= 4.5
                      and u_dur >= 2.0):
                    lead = float(rng.uniform(2.3, min(3.5, p_dur - 1.0)))
                    if u_dur > lead + 1.0 and prev.end - int(lead * SR) >= own_end + int(0.3 * SR):
                        start, kind = prev.end - int(lead * SR), "overlap"
                    else:
                        start = prev.end + int(rng.uniform(0.2, 1.5) * SR)
                else:
                    start = prev.end + int(rng.uniform(0.2, 1.5) * SR)
            if start + u.audio.size > end_limit:
                break
            if pending_cut is not None and prev is not None:
                self.cut(prev, pending_cut)
            u.start, u.kind = start, kind
            self.utts.append(u)
            prev = u
            party = "customer" if party == "agent" else "agent"

    def cut(self, u: Utterance, at: int) -> None:
        keep = at - u.start
        if keep <= 0 or keep >= u.audio.size:
            return
        full = _active_count(u.audio)
        x = u.audio[:keep].copy()
        nf = min(int(0.05 * SR), x.size)
        x[-nf:] *= np.linspace(1.0, 0.0, nf, dtype=np.float32)
        if u.syllables is not None and full > 0:
            u.syllables = int(round(u.syllables * _active_count(x) / full))
            u.syllables_estimated = True
        u.audio, u.cut = x, True

    def backchannels(self) -> None:
        rng, spec = self.rng, self.spec
        main = [u for u in self.utts]
        for u in main:
            dur = u.audio.size / SR
            if dur < 3.0:
                continue
            listener: Party = "customer" if u.party == "agent" else "agent"
            for _ in range(int(rng.poisson(dur * spec.backchannels_per_s))):
                text = str(rng.choice(content.BACKCHANNELS[self.lang]))
                speed = min(450, self.speed_for(listener, u.start / SR) + 20)
                x = self.tts(text, self.voice[listener], speed, self.pitch[listener])
                if x.size > 0.9 * SR:
                    continue
                t0 = u.start + int(rng.uniform(0.8, max(0.9, dur - 1.8 - x.size / SR)) * SR)
                t1 = t0 + x.size
                if t1 + int(0.3 * SR) > u.end:
                    continue
                margin = int(1.0 * SR)
                if any(v.party == listener and v.start - margin < t1 and t0 < v.end + margin for v in self.utts):
                    continue
                if any(h0 - margin < t1 and t0 < h1 + margin for h0, h1 in self.holds):
                    continue
                syl = count_syllables(text, self.lang, self.voice[listener])
                self.utts.append(Utterance(listener, t0, x, "backchannel", self.lang, self.voice[listener],
                                           speed, self.pitch[listener], syl, text))
        self.utts.sort(key=lambda v: (v.start, v.party))

    # -- truth
    def tracks(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        nfr = self.n // FRAME_SAMPLES
        track = {p: np.zeros(self.n, np.float32) for p in ("agent", "customer")}
        thr = {p: np.full(nfr, np.inf) for p in ("agent", "customer")}
        for u in self.utts:
            end = min(u.end, self.n)
            track[u.party][u.start:end] += u.audio[: end - u.start]
        energy = {p: effects.frame_energy(track[p]) for p in track}
        for u in self.utts:
            f0, f1 = u.start // FRAME_SAMPLES, min(nfr, -(-min(u.end, self.n) // FRAME_SAMPLES))
            e = energy[u.party][f0:f1]
            np.minimum(thr[u.party][f0:f1], _utt_threshold(e), out=thr[u.party][f0:f1])
        active = {p: _bridge(energy[p] > thr[p]) for p in track}
        return track, active

    def truth(self, active: dict[str, np.ndarray]) -> dict[str, Any]:
        from pacelight.analysis.overlaps import classify_overlaps

        a, c = active["agent"], active["customer"]
        segs = {p: _segments(active[p]) for p in active}
        ov = classify_overlaps([tuple(s) for s in segs["agent"]], [tuple(s) for s in segs["customer"]])
        overlaps = [{"start": o.start_s, "end": o.end_s, "kind": o.kind, "by": o.by} for o in ov]
        dur = self.n / SR
        agent_s = round(float(a.sum()) * FRAME_S, 3)
        customer_s = round(float(c.sum()) * FRAME_S, 3)
        talk = {"agent_s": agent_s, "customer_s": customer_s,
                "silence_s": round(dur - float((a | c).sum()) * FRAME_S, 3),
                "overlap_s": round(float((a & c).sum()) * FRAME_S, 3),
                "agent_ratio": round(agent_s / (agent_s + customer_s), 4) if agent_s + customer_s > 0 else None}

        def count(kind: str, by: str) -> int:
            return sum(1 for o in overlaps if o["kind"] == kind and o["by"] == by)

        overtalk = {"events": len(overlaps),
                    "agent_interruptions": count("interruption", "agent"),
                    "customer_interruptions": count("interruption", "customer"),
                    "agent_backchannels": count("backchannel", "agent"),
                    "customer_backchannels": count("backchannel", "customer")}
        pace: dict[str, float | None] = {}
        for p, talk_s in (("agent", agent_s), ("customer", customer_s)):
            us = [u for u in self.utts if u.party == p]
            if not us or talk_s < 8.0 or any(u.syllables is None for u in us):
                pace[f"{p}_syl_s"] = None
            else:
                pace[f"{p}_syl_s"] = round(sum(u.syllables for u in us) / talk_s, 3)  # type: ignore[misc]
        longest = {p: round(max((e - s for s, e in segs[p]), default=0.0), 3) for p in segs}
        truth: dict[str, Any] = {
            "schema": "pacelight.sim-truth/1", "seed": self.seed, "duration_s": round(dur, 3),
            "sample_rate_hz": self.spec.rate_hz, "languages": [self.lang], "sources": list(self.sources),
            "voices": self.voice, "base_speed_wpm": self.base_speed,
            "segments": segs, "overlaps": overlaps, "talk": talk, "overtalk": overtalk, "pace": pace,
            "monologue": {"agent_longest_s": longest["agent"], "customer_longest_s": longest["customer"]},
            "holds": [[round(h0 / SR, 3), round(h1 / SR, 3)] for h0, h1 in self.holds],
            "utterances": [u.as_truth() for u in self.utts],
        }
        rc = self.spec.rate_change
        if rc is not None:
            truth["rate_change"] = {"party": rc.party, "at_s": rc.at_s, "factor": rc.factor,
                                    **self._pace_split(rc)}
        return truth

    def _pace_split(self, rc: RateChange) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, sel in (("before", lambda u: u.start / SR < rc.at_s), ("after", lambda u: u.start / SR >= rc.at_s)):
            us = [u for u in self.utts if u.party == rc.party and sel(u)]
            secs = sum(_active_count(u.audio) for u in us) * FRAME_S
            ok = us and secs > 0 and all(u.syllables is not None for u in us)
            out[f"syl_s_{name}"] = round(sum(u.syllables for u in us) / secs, 3) if ok else None  # type: ignore[misc]
            speeds = [u.speed for u in us if u.speed is not None and u.kind != "backchannel"]
            out[f"mean_speed_wpm_{name}"] = round(float(np.mean(speeds)), 1) if speeds else None
        return out


# ----------------------------------------------------------------------------------------- effects
def _babble(b: _Builder, n_samples: int) -> tuple[np.ndarray, dict[str, Any]]:
    rng = b.rng
    k = int(rng.integers(2, 5))
    voices = [v for lang in b.spec.langs for v in content.VOICES[lang] if v != b.voice["agent"]]
    out = np.zeros(n_samples, np.float32)
    used = []
    for _ in range(k):
        v = voices[int(rng.integers(0, len(voices)))]
        lang = next(lang for lang in content.LANGS if v in content.VOICES[lang])
        pool = content.AGENT_SENTENCES[lang]
        speed = int(rng.choice([160, 190]))
        stream = np.zeros(n_samples, np.float32)
        t = int(rng.uniform(0, 2.0) * SR)
        while t < n_samples:
            x = b.tts(str(pool[int(rng.integers(0, len(pool)))]), v, speed, None)
            m = min(x.size, n_samples - t)
            stream[t:t + m] += x[:m] * float(rng.uniform(0.5, 1.0))
            t += x.size + int(rng.uniform(0.1, 1.2) * SR)
        out += stream
        used.append({"voice": v, "speed": speed})
    rt60 = float(rng.uniform(0.3, 0.7))
    lp = float(rng.uniform(2500, 4000))
    out = effects.lowpass(effects.reverb(out, rt60, rng), lp)
    return out, {"talkers": used, "rt60_s": round(rt60, 3), "lowpass_hz": round(lp, 1)}


def _noise(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    kind = str(rng.choice(["pink", "brown"]))
    mains = float(rng.choice([50.0, 60.0]))
    hum_db = float(rng.uniform(-25, -10))  # hum relative to the broadband noise
    x = effects.colored_noise(n, kind, rng) + effects.hum(n, mains, rng) * effects.db(hum_db)
    x = x / np.sqrt(np.mean(x**2))
    return x.astype(np.float32), {"kind": kind, "hum_hz": mains, "hum_re_noise_db": round(hum_db, 2)}


def _apply_effects(b: _Builder, track: dict[str, np.ndarray], active: dict[str, np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    rng = b.rng
    n = b.n
    lvl = {p: float(rng.uniform(-35, -12)) for p in ("agent", "customer")}
    meas = {p: effects.active_level_db(track[p], active[p]) for p in track}
    gain = {p: effects.db(lvl[p] - meas[p]) if meas[p] > -100 else 1.0 for p in track}
    agent = track["agent"] * gain["agent"]
    cust = track["customer"] * gain["customer"]
    fx: dict[str, Any] = {"mode": "all", "target_level_dbfs": {p: round(v, 2) for p, v in lvl.items()}}
    if not b.spec.effects:
        fx["mode"] = "clean"
        return agent, cust, fx
    # Far end: line noise, telephone band + G.711 μ-law.
    noise_c, nfx_c = _noise(n, rng)
    snr_c = float(rng.uniform(10, 30))
    # Agent sidetone / line echo (network hybrid) joins the far-end signal before the codec.
    echo_db, echo_ms = float(rng.uniform(15, 30)), float(rng.uniform(5, 60))
    echo = effects.delay(agent, echo_ms / 1000) * effects.db(lvl["customer"] - echo_db - lvl["agent"])
    rx = effects.telephone(cust + noise_c * effects.db(lvl["customer"] - snr_c) + echo)
    # Near end: customer leaking from the earpiece into the mic.
    leak_db, leak_ms = float(rng.uniform(15, 30)), float(rng.uniform(2, 40))
    leak_lp = float(rng.uniform(2500, 3800))
    leak = effects.lowpass(effects.delay(rx, leak_ms / 1000), leak_lp) * effects.db(
        lvl["agent"] - leak_db - lvl["customer"])
    bab, bfx = _babble(b, n)
    bab_db = float(rng.uniform(15, 30))
    bab_lvl = effects.active_level_db(bab, np.ones(n // FRAME_SAMPLES, bool))
    bab = bab * effects.db(lvl["agent"] - bab_db - bab_lvl) if bab_lvl > -100 else bab
    noise_a, nfx_a = _noise(n, rng)
    snr_a = float(rng.uniform(10, 30))
    mic = agent + leak + bab + noise_a * effects.db(lvl["agent"] - snr_a)
    fx.update({
        "customer_codec": "bandpass 300-3400 Hz + G.711 mu-law (8 kHz)",
        "customer_noise": {**nfx_c, "snr_db": round(snr_c, 2)},
        "agent_noise": {**nfx_a, "snr_db": round(snr_a, 2)},
        "line_echo": {"re_customer_db": -round(echo_db, 2), "delay_ms": round(echo_ms, 2)},
        "mic_leak": {"re_agent_db": -round(leak_db, 2), "delay_ms": round(leak_ms, 2),
                     "lowpass_hz": round(leak_lp, 1)},
        "babble": {**bfx, "re_agent_db": -round(bab_db, 2)},
    })
    return mic.astype(np.float32), rx.astype(np.float32), fx


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    if rate == SR:
        return x
    from scipy.signal import resample_poly

    g = np.gcd(rate, SR)
    return resample_poly(x, rate // g, SR // g, axis=0).astype(np.float32)


# ----------------------------------------------------------------------------------------- public API
def simulate_call(spec: CallSpec, seed: int, call_id: str | None = None) -> SimulatedCall:
    """Simulate one call. Same ``spec`` and ``seed`` → identical audio and truth."""
    b = _Builder(spec, int(seed))
    extra: dict[str, Any] = {}
    if spec.call_state:
        from pacelight.sim import callstate

        callstate.reserve(b)
    b.schedule()
    b.backchannels()
    if spec.call_state:
        extra = callstate.plan(b)
    track, active = b.tracks()
    truth = b.truth(active)
    agent, cust, fx = _apply_effects(b, track, active)
    truth["effects"] = fx
    if spec.call_state and spec.call_state_sounds:
        agent, cust = callstate.render(b, extra, agent, cust, truth)
    elif spec.call_state:
        truth["call_state_sounds"] = False  # the twin: same call, none of the call-state sounds
    mix = np.stack([agent, cust], axis=1)
    scale = {}
    for ch, p in enumerate(("agent", "customer")):
        peak = float(np.abs(mix[:, ch]).max()) if mix.size else 0.0
        s = PEAK_LIMIT / peak if peak > PEAK_LIMIT else 1.0
        mix[:, ch] *= s
        scale[p] = s
        fx.setdefault("final_level_dbfs", {})[p] = round(effects.active_level_db(mix[:, ch], active[p]), 2)
    fx["peak_limit_scale"] = {p: round(v, 4) for p, v in scale.items()}
    out = _resample(mix, spec.rate_hz)
    n_out = int(round(b.n / SR * spec.rate_hz))
    if out.shape[0] < n_out:
        out = np.concatenate([out, np.zeros((n_out - out.shape[0], 2), np.float32)])
    out = np.clip(out[:n_out], -1.0, 1.0).astype(np.float32)
    truth["call_id"] = call_id or f"sim-{seed}"
    clean = np.stack([track["agent"], track["customer"]], axis=1)
    return SimulatedCall(out, spec.rate_hz, truth, clean)


def call_seed(run_seed: int, index: int) -> int:
    """The per-call seed of call ``index`` in a run seeded with ``run_seed``."""
    return int(np.random.SeedSequence([int(run_seed), int(index)]).generate_state(1, np.uint32)[0])


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_call(call: SimulatedCall, wav_path: Path) -> tuple[Path, Path]:
    """Write ``call`` as 16-bit PCM stereo WAV plus ``<stem>.truth.json`` (atomically)."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    pcm = np.round(np.clip(call.audio, -1.0, 1.0) * 32767.0).astype(np.int16)
    sf.write(buf, pcm, call.rate, subtype="PCM_16", format="WAV")
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(wav_path, buf.getvalue())
    jpath = wav_path.with_suffix(".truth.json")
    _atomic_write_bytes(jpath, (json.dumps(call.truth, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    return wav_path, jpath


def write_calls(out_dir: str | os.PathLike[str], n: int, seed: int,
                progress: Callable[[int, int, SimulatedCall], None] | None = None,
                spec: CallSpec | None = None, **spec_overrides: Any) -> list[Path]:
    """Simulate ``n`` calls into ``out_dir/call-000.wav`` (+ ``.truth.json``); returns the WAV paths."""
    if n < 1:
        raise ValueError("n must be >= 1")
    spec = replace(spec or CallSpec(), **spec_overrides)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        call = simulate_call(spec, call_seed(seed, i), call_id=f"sim-{seed}-{i:03d}")
        call.truth["run_seed"] = int(seed)
        call.truth["index"] = i
        wav, _ = write_call(call, out / f"call-{i:03d}.wav")
        paths.append(wav)
        if progress is not None:
            progress(i, n, call)
    return paths
