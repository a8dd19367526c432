"""Per-party voice activity: webrtcvad, cross-channel echo gating and level-relative hysteresis.

Method (per 10 ms frame, both channels):

1. **Features.** Frame level ``e`` in dBFS and the webrtcvad decision.
2. **Echo / crosstalk gating.** The agent microphone picks up the customer (earpiece leak,
   crosstalk) and the receive path carries the agent (sidetone, line echo), delayed by a few to
   tens of ms. The leak into channel A is predicted from channel B as
   ``leak_A(t) = g_BA + max(e_B[t-L .. t])``: the maximum over the possible delays (``L`` =
   ``echo_max_delay_s``) makes an explicit delay estimate unnecessary. The leak gain ``g_BA`` is
   estimated during the call from ``d = e_A - max(e_B)`` over the frames where B is near its own
   speech level (so B is talking, and A-only frames — where B carries at most A's echo — are
   excluded) and A's channel shows something above its noise floor. In those frames A is usually
   silent, so the median of ``d`` is the leak; A's own speech during overlaps, a minority, only
   lifts the upper percentiles. If A's channel stays at its noise floor in most such frames, the
   leak is below the noise and the gate reduces to the noise floor (gain ``floor_A - level_B``). Until B
   has spoken for ``leak_min_evidence_s`` a prior is used, and a physical bound (``leak_max_db``)
   caps the estimate. A frame counts for A only if it is ``echo_margin_db`` above its predicted leak.
2b. **Per-band gating** (``spectral``, on by default). Echo and
   crosstalk are filtered copies of the other channel (the receive path is telephone band,
   the earpiece leak is low-passed), while close-talk speech covers the whole band, and line/room noise is coloured (brown/pink noise and
   hum sit low, where speech has little). Each frame gets one Hann-windowed rfft and band levels
   in ``band_edges_hz`` (0–300–800–1600–3400–8000 Hz). Per band, the noise floor (a low
   percentile) and the leak gain (the same evidence rule as above, but band by band) predict
   ``noise + leak``; the frame's *excess* is how far a band rises over that prediction. Echo
   passes a band only where the other channel had energy in it, so the own voice of the
   quieter party in double talk, and soft onsets in coloured noise, stand out in some bands
   where the broadband test sees nothing. To keep single-band flukes (hum, a fricative from a
   neighbour) out, the gate needs ``band_agree`` bands over the prediction: the echo gate of a
   strong frame needs ``band_echo_margin_db`` and a weak frame ``band_weak_margin_db``, both
   on the ``band_agree``-th largest band excess; the broadband floor tests of step 3 stay, except
   that a voiced frame ``weak_band_over_floor_db`` over its band prediction is over the floor too
   (loud brown noise sets the broadband floor and hides soft speech the bands see). Band
   statistics are refreshed every 0.5 s (they have time constants of seconds).
3. **Level-relative hysteresis.** Neighbours' voices in the room (babble) and line noise are
   quieter than the party's own close-talk voice. Each channel tracks its noise floor (a low
   percentile of all frames) and the party's speech level (a high percentile of its gated speech
   frames). A talk stretch opens on ``onset_frames`` *strong* frames (VAD, echo-gated, within
   ``onset_below_level_db`` of the speech level and ``onset_above_floor_db`` over the floor) and
   extends over adjacent *weak* frames (echo-gated and a few dB over the floor) — backwards up to
   ``onset_backtrack_s`` and forwards up to ``release_hang_s`` after the last strong frame, so
   soft word onsets and decays are kept without latching onto background noise. Inside a
   stretch (and within ``sustain_resume_s`` after one closed), *sustain* frames
   — voiced, echo-gated, at most ``sustain_below_level_db`` under the speech level — count as
   strong: quiet syllables, and the quieter party's own voice in double talk, keep a turn whole
   instead of fragmenting it into a false interruption. They never open a stretch on their own.

The detector emits raw talk stretches (frame index ranges); the turn tracker bridges pauses
shorter than 0.2 s (CONTRACT section 2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from pacelight.analysis.levels import DecayingHistogram, DecayingHistograms
from pacelight.frames import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

SILENCE_DB = -100.0
_BAND_STATS_FRAMES = 50  # band floors and leak gains are refreshed every 0.5 s


@dataclass(frozen=True)
class ActivitySettings:
    # webrtcvad aggressiveness 0..3. Mode 3 rejects most brown/pink line-noise surges and babble
    # that mode 2 calls speech (agent false alarm 1.8 -> 1.1 % on 30 + 12 simulated calls); the
    # soft speech it drops is recovered by the level/band hysteresis around its decisions.
    vad_mode: int = 3
    echo_max_delay_s: float = 0.06
    echo_margin_db: float = 6.0
    echo_weak_margin_db: float = 3.0
    leak_prior_db: float = -20.0  # leak gain assumed until the other party has spoken
    leak_max_db: float = -10.0  # physical bound: echo/crosstalk/sidetone are quieter than this
    leak_percentile: float = 0.75
    leak_evidence_below_level_db: float = 6.0
    leak_above_floor_db: float = 6.0
    leak_audible_share: float = 0.3  # below this share of audible frames the leak is under the noise
    leak_noise_aware: bool = True
    leak_bound_by_levels: bool = True
    leak_min_evidence_s: float = 1.0
    floor_percentile: float = 0.15
    floor_time_constant_s: float = 4.0  # line noise drifts by 10+ dB within seconds (hold, brown)
    level_percentile: float = 0.8
    level_time_constant_s: float = 60.0
    # Speech level usable after this much voiced speech. Until then there is no level-relative
    # onset test, no sustain and no leak evidence from this party, which at call start split turns
    # (0.3 s: interruption recall 0.871 -> 0.903 on 30 simulated calls, talk-ratio error down).
    level_min_evidence_s: float = 0.3
    onset_below_level_db: float = 13.0
    onset_above_floor_db: float = 12.0
    weak_above_floor_db: float = 6.0
    weak_vad_above_floor_db: float = 1.0  # continuation where webrtcvad hears speech
    # Inside an open stretch, a voiced, echo-gated frame within this much of the speech level
    # restarts the release hang like a strong frame (quiet syllables of a turn, the quieter
    # party in double talk); None: off.
    sustain_below_level_db: float | None = 25.0
    sustain_resume_s: float = 0.1  # ... and for this long after a stretch closed, reopen it
    onset_frames: int = 2  # strong frames to open a stretch (with vad_mode 3; was 3 with mode 2)
    onset_backtrack_s: float = 0.10
    release_hang_s: float = 0.15
    # Word onsets and decays continue below what noise lets us see; pad every stretch by this much.
    pad_start_s: float = 0.0
    pad_end_s: float = 0.0
    # Spectral gating: per-band noise floors and per-band leak prediction (see module docstring).
    # Measured on 30 + 12 simulated calls (docs/benchmarks.md): talk-ratio error max 5.8 → 3.0 pp,
    # interruption recall 0.74 → 0.87; tuned together with onset_below_level_db=13 and
    # release_hang_s=0.15 (without bands use 16 and 0.25).
    spectral: bool = True
    band_edges_hz: tuple[float, ...] = (0.0, 300.0, 800.0, 1600.0, 3400.0, 8000.0)
    band_echo_margin_db: float = 6.0  # some band must be this far over its noise + predicted leak
    band_weak_margin_db: float = 1.0
    band_weak_vad_margin_db: float = 2.0
    broadband_echo_margin_db: float | None = None  # if set, also required over the broadband leak
    band_agree: int = 2  # the echo gate needs this many bands over their noise + leak
    band_smooth_frames: int = 1  # band powers averaged over this many frames (variance of the test)
    # A voiced frame whose ``band_agree``-th band excess over noise + leak is at least this counts
    # as over the floor for *weak* (continuation) frames even when its broadband level is not:
    # loud low-frequency (brown) noise sets the broadband floor and hides soft speech that the
    # bands see clearly. None: broadband floor test only.
    weak_band_over_floor_db: float | None = 12.0

    def __post_init__(self) -> None:
        if self.vad_mode not in (0, 1, 2, 3):
            raise ValueError("vad_mode must be 0..3")
        if not 0.0 < self.echo_max_delay_s <= 0.5:
            raise ValueError("echo_max_delay_s must be in (0, 0.5]")


def _db(power: np.ndarray) -> np.ndarray:
    return np.maximum(10.0 * np.log10(power + 1e-12), SILENCE_DB)


def _powsum_db(a_db: np.ndarray, b_db: np.ndarray | float) -> np.ndarray:
    return 10.0 * np.log10(10.0 ** (a_db / 10.0) + 10.0 ** (np.asarray(b_db) / 10.0))


class BandLevels:
    """Per-band levels (dB) of 10 ms frames: one Hann-windowed rfft per frame, bins summed per band."""

    def __init__(self, edges_hz: tuple[float, ...]) -> None:
        if len(edges_hz) < 2 or any(b <= a for a, b in zip(edges_hz, edges_hz[1:], strict=False)):
            raise ValueError("band_edges_hz must be increasing, at least two edges")
        freqs = np.fft.rfftfreq(FRAME_SAMPLES, 1.0 / SAMPLE_RATE_HZ)
        self.starts = np.searchsorted(freqs, np.asarray(edges_hz[:-1]), side="left")
        self.n_bands = len(self.starts)
        win = np.hanning(FRAME_SAMPLES + 2)[1:-1]
        self.window = (win / np.sqrt(np.mean(win**2))).astype(np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` (..., FRAME_SAMPLES) → band powers (..., n_bands) re full scale."""
        spec = np.fft.rfft(frames * self.window, axis=-1)
        power = spec.real**2 + spec.imag**2
        return np.add.reduceat(power, self.starts, axis=-1) * (2.0 / FRAME_SAMPLES**2)


def frame_levels_db(frames: np.ndarray) -> np.ndarray:
    """RMS level of each frame (n, FRAME_SAMPLES) in dBFS (−100 for digital silence)."""
    power = np.add.reduce(np.square(frames, dtype=np.float64), axis=-1) / frames.shape[-1]  # == np.mean
    return np.maximum(10.0 * np.log10(power + 1e-12), SILENCE_DB)


def to_pcm16(frames: np.ndarray) -> bytes:
    """Float samples (full scale ±1) → 16-bit little-endian PCM bytes, clipped."""
    return np.minimum(np.maximum(frames * 32768.0, -32768), 32767).astype("<i2").tobytes()


class Vad:
    """webrtcvad on 10 ms frames (lazy native import)."""

    def __init__(self, mode: int) -> None:
        import _webrtcvad  # the native module behind webrtcvad.Vad
        import webrtcvad

        self._vad = webrtcvad.Vad(mode)
        # Vad.is_speech only checks the buffer length (ours is fixed): call the native function.
        self._process = _webrtcvad.process
        self._handle = self._vad._vad

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Decisions for (n, FRAME_SAMPLES) float frames."""
        buf = to_pcm16(frames)
        step = FRAME_SAMPLES * 2
        proc, h = self._process, self._handle
        return np.array(
            [proc(h, SAMPLE_RATE_HZ, buf[i : i + step], FRAME_SAMPLES) for i in range(0, len(buf), step)],
            dtype=bool,
        )


class _Hysteresis:
    """Per-frame state machine turning strong/weak frame flags into talk stretches."""

    def __init__(self, s: ActivitySettings) -> None:
        self.onset_frames = s.onset_frames
        self.backtrack = int(round(s.onset_backtrack_s / FRAME_S))
        self.hang = int(round(s.release_hang_s / FRAME_S))
        self.pad_start = int(round(s.pad_start_s / FRAME_S))
        self.pad_end = int(round(s.pad_end_s / FRAME_S))
        self.weak_run_start: int | None = None
        self.strong_in_run = 0
        self.first_strong: int | None = None
        self.last_strong = -(10**9)
        self.open_start: int | None = None
        self.closed: list[tuple[int, int]] = []
        self.last_end = -(10**9)
        self.resume = int(round(s.sustain_resume_s / FRAME_S))

    def step(self, t: int, strong: bool, weak: bool, keep: bool = False) -> None:
        """``keep``: a frame that cannot open a stretch but counts as strong inside one."""
        weak = weak or strong or keep
        if self.open_start is not None:
            if not weak or t - self.last_strong > self.hang:
                self.closed.append((self.open_start, min(t, self.last_strong + self.hang + 1) + self.pad_end))
                self.last_end = self.closed[-1][1]
                self.open_start = None
                self.weak_run_start = None if not weak else t
                self.strong_in_run = 0
                self.first_strong = None
            elif keep:
                strong = True
        resume = keep and self.open_start is None and t - self.last_end < self.resume
        if resume:
            strong = True  # a stretch that just closed on a dip resumes on a sustain frame
        if weak:
            if self.weak_run_start is None:
                self.weak_run_start = t
                self.strong_in_run = 0
                self.first_strong = None
        else:
            self.weak_run_start = None
            self.strong_in_run = 0
            self.first_strong = None
        if strong:
            self.last_strong = t
            self.strong_in_run += 1
            if self.first_strong is None:
                self.first_strong = t
            if self.open_start is None and (self.strong_in_run >= self.onset_frames or resume):
                start = max(self.weak_run_start or t, self.first_strong - self.backtrack) - self.pad_start
                if self.closed and start < self.closed[-1][1]:
                    start = self.closed[-1][1]
                self.open_start = start

    def run(self, t0: int, strong: np.ndarray, weak: np.ndarray, keep: np.ndarray | None = None) -> None:
        """``step`` over frames ``t0, t0 + 1, ...``, skipping the blocks where it cannot change
        anything but counters (the common cases: silence, and the middle of a talk stretch)."""
        n = len(strong)
        with_keep = keep is not None and bool(keep.any())
        if self.open_start is None and self.weak_run_start is None and not (
                with_keep or weak.any() or strong.any()):
            return  # idle and nothing heard: every step would leave the state as it is
        if self.open_start is not None and t0 - self.last_strong <= self.hang and strong.all():
            self.last_strong = t0 + n - 1  # open, within the hang, all strong: it just goes on
            self.strong_in_run += n
            return
        step = self.step
        kp = keep.tolist() if with_keep else repeat(False, n)
        for i, (st, wk, k) in enumerate(zip(strong.tolist(), weak.tolist(), kp)):  # noqa: B905 (repeat)
            step(t0 + i, st, wk, k)

    def take_closed(self) -> list[tuple[int, int]]:
        out, self.closed = self.closed, []
        return out

    def earliest_start(self, now: int) -> int:
        """The earliest frame a stretch not yet closed may start at, given frames before ``now``:
        an open stretch's start, or where a weak run under way would be backtracked to once it
        gets its ``onset_frames`` strong frames (a stretch opens a few frames after its start)."""
        if self.open_start is not None:
            return self.open_start
        if self.weak_run_start is None:
            return now - self.pad_start
        first = now if self.first_strong is None else self.first_strong
        return max(self.weak_run_start, first - self.backtrack) - self.pad_start

    def flush(self, t_end: int) -> None:
        if self.open_start is not None:
            self.closed.append((self.open_start, min(t_end, self.last_strong + self.hang + 1 + self.pad_end)))
            self.open_start = None
        if self.closed and self.closed[-1][1] > t_end:
            self.closed[-1] = (self.closed[-1][0], t_end)


class ChannelActivity:
    """Talk detection for one party's channel, given the other channel's levels for gating."""

    def __init__(self, settings: ActivitySettings) -> None:
        s = settings
        self.s = s
        self.vad = Vad(s.vad_mode)
        self.floor = DecayingHistogram(-100.0, 0.0, 0.5, s.floor_time_constant_s)
        self.level = DecayingHistogram(-100.0, 0.0, 0.5, s.level_time_constant_s)
        self.leak = DecayingHistogram(-80.0, 40.0, 0.5, 120.0)
        self._leak_decay = self.leak.decay_per_frame
        self._other_talk_frames = 0.0  # decayed count of frames where the other party talked
        self._other_level_db: float | None = None
        nb = len(s.band_edges_hz) - 1
        self.band_floor = DecayingHistograms(nb, -120.0, 0.0, 0.5, s.floor_time_constant_s)
        self.band_leak = DecayingHistograms(nb, -80.0, 60.0, 0.5, 120.0)
        if not 1 <= s.band_agree <= nb:
            raise ValueError("band_agree must be between 1 and the number of bands")
        self._pend_floor: list[np.ndarray] = []
        self._pend_leak: list[np.ndarray] = []
        self._pend_n = 0
        self._band_floors: np.ndarray | None = None
        self._band_gains = np.full(nb, s.leak_prior_db)
        self.hyst = _Hysteresis(s)
        self.frame_index = 0
        self.last_vad = np.zeros(0, dtype=bool)
        self.last_strong = np.zeros(0, dtype=bool)

    def leak_gain_db(self) -> float:
        s = self.s
        if self._other_talk_frames * FRAME_S < s.leak_min_evidence_s:
            return s.leak_prior_db
        if s.leak_noise_aware:
            est = self.leak.percentile(s.leak_percentile)
            return s.leak_prior_db if est is None else min(est, self._leak_bound_db())
        if self.leak.weight() < s.leak_audible_share * self._other_talk_frames or self._other_level_db is None:
            floor = self.floor.percentile(s.floor_percentile)
            if floor is not None and self._other_level_db is not None:
                return min(floor - self._other_level_db, s.leak_max_db)
            return s.leak_prior_db
        est = float(self.leak.percentile(s.leak_percentile))  # type: ignore[arg-type]
        return min(est, s.leak_max_db)

    def _leak_bound_db(self) -> float:
        """Physical bound on the leak gain in channel-level terms: the leak is at least
        ``-leak_max_db`` below the source party's own voice, but the two channels may have very
        different gains, so the bound moves with the difference of the parties' speech levels."""
        mine = self.speech_level_db()
        if not self.s.leak_bound_by_levels or mine is None or self._other_level_db is None:
            return self.s.leak_max_db
        return self.s.leak_max_db + max(0.0, mine - self._other_level_db)

    def speech_level_db(self) -> float | None:
        if self.level.total_added * FRAME_S < self.s.level_min_evidence_s:
            return None
        return self.level.percentile(self.s.level_percentile)

    def band_leak_gains_db(self) -> np.ndarray:
        """Per-band leak gains (dB), bounded like the broadband one."""
        s = self.s
        nb = self.band_leak.n_series
        if self._other_talk_frames * FRAME_S < s.leak_min_evidence_s:
            return np.full(nb, s.leak_prior_db)
        est = self.band_leak.percentile(s.leak_percentile)
        if est is None:
            return np.full(nb, s.leak_prior_db)
        return np.minimum(est, self._leak_bound_db())

    def _band_excess_db(self, eb: np.ndarray, other_bmax: np.ndarray,
                        evidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per frame, the largest and the ``band_agree``-th largest excess (dB) of a band's level
        over that band's noise floor plus its predicted leak from the other channel.

        The band statistics (floors, leak gains) have time constants of seconds, so they are
        refreshed every ``_BAND_STATS_FRAMES`` frames from buffered frames (cheap, and the same
        for any chunking because blocks are always 50 ms)."""
        s = self.s
        n = len(eb)
        self._pend_floor.append(eb)
        self._pend_leak.append((eb - other_bmax)[evidence])
        self._pend_n += n
        if self._band_floors is None or self._pend_n >= _BAND_STATS_FRAMES:
            self.band_leak.add(np.concatenate(self._pend_leak), self._pend_n)
            self.band_floor.add(np.concatenate(self._pend_floor), self._pend_n)
            self._pend_floor, self._pend_leak, self._pend_n = [], [], 0
            self._band_floors = self.band_floor.percentile(s.floor_percentile)
            self._band_floors_pow = 10.0 ** (self._band_floors / 10.0)
            self._band_gains = self.band_leak_gains_db()
        # _powsum_db(gains + other_bmax, floors), with the floors' powers cached
        pred = 10.0 * np.log10(10.0 ** ((self._band_gains + other_bmax) / 10.0) + self._band_floors_pow)
        ex = np.sort(eb - pred, axis=1)
        return ex[:, -1], ex[:, -s.band_agree]

    def process(self, frames: np.ndarray, e: np.ndarray, other_max_db: np.ndarray,
                evidence: np.ndarray, other_level_db: float | None = None,
                allowed: np.ndarray | None = None, eb: np.ndarray | None = None,
                other_bmax: np.ndarray | None = None) -> None:
        """One block: ``e`` this channel's levels; ``other_max_db`` the other's max level over the
        echo delay window; ``evidence`` frames where the other party is near its speech level."""
        s = self.s
        n = len(e)
        vad = self.vad(frames)
        self.last_vad = vad
        floor = self.floor.percentile(s.floor_percentile)
        floor = float(np.min(e)) if floor is None else floor
        level = self.speech_level_db()
        onset_thr = floor + s.onset_above_floor_db
        if level is not None:
            onset_thr = max(onset_thr, level - s.onset_below_level_db)
        self._other_level_db = other_level_db
        self._other_talk_frames = self._other_talk_frames * self._leak_decay**n + np.count_nonzero(evidence)
        floor_ok = (e >= floor + s.weak_above_floor_db) | (vad & (e >= floor + s.weak_vad_above_floor_db))
        if s.spectral and eb is not None and other_bmax is not None:
            x, x_agree = self._band_excess_db(eb, other_bmax, evidence)
            self.last_excess = x
            echo_ok = x_agree >= s.band_echo_margin_db
            if s.weak_band_over_floor_db is not None:
                floor_ok = floor_ok | (vad & (x_agree >= s.weak_band_over_floor_db))
            weak = (x_agree >= s.band_weak_margin_db) & floor_ok
            if s.broadband_echo_margin_db is not None:
                self.leak.add((e - other_max_db)[evidence], n)
                leak_pred = _powsum_db(self.leak_gain_db() + other_max_db, floor)
                echo_ok &= e >= leak_pred + s.broadband_echo_margin_db
                weak &= e >= leak_pred + s.broadband_echo_margin_db - 3.0
        else:
            # Leak evidence: this channel relative to the other while the other is talking.
            if s.leak_noise_aware:
                self.leak.add((e - other_max_db)[evidence], n)
            else:
                self.leak.add((e - other_max_db)[evidence & (e >= floor + s.leak_above_floor_db)], n)
            leak_pred = self.leak_gain_db() + other_max_db
            if s.leak_noise_aware:
                leak_pred = _powsum_db(leak_pred, floor)
            echo_ok = e >= leak_pred + s.echo_margin_db
            weak = (e >= leak_pred + s.echo_weak_margin_db) & floor_ok
        strong = vad & echo_ok & (e >= onset_thr)
        if allowed is not None:  # e.g. the call-state classifier: music, tones, IVR are never talk
            strong &= allowed
            weak &= allowed
        self.last_strong = strong
        self.floor.add(e, n)
        voiced = vad & echo_ok & (e >= floor + s.onset_above_floor_db)
        self.level.add(e[voiced], 0)
        keep = None
        if s.sustain_below_level_db is not None and level is not None:
            keep = voiced & (e >= level - s.sustain_below_level_db)
            if allowed is not None:
                keep &= allowed
        self.hyst.run(self.frame_index, strong, weak, keep)
        self.frame_index += n

    @property
    def talking(self) -> bool:
        """Provisional: is a talk stretch open at the latest frame?"""
        return self.hyst.open_start is not None

    def take_closed(self) -> list[tuple[int, int]]:
        return self.hyst.take_closed()

    def earliest_start(self) -> int:
        """No stretch closed from now on can start before this frame (see ``_Hysteresis``)."""
        return self.hyst.earliest_start(self.frame_index)

    def flush(self) -> list[tuple[int, int]]:
        self.hyst.flush(self.frame_index)
        return self.hyst.take_closed()


class EchoGatedActivity:
    """Both parties' activity with mutual echo gating (channel 0 agent, channel 1 customer)."""

    def __init__(self, settings: ActivitySettings | None = None) -> None:
        self.s = settings or ActivitySettings()
        self.channels = (ChannelActivity(self.s), ChannelActivity(self.s))
        self.lag = max(1, int(round(self.s.echo_max_delay_s / FRAME_S)))
        self.bands = BandLevels(self.s.band_edges_hz) if self.s.spectral else None
        nb = len(self.s.band_edges_hz) - 1 if self.s.spectral else 0
        self._hist = np.full((self.lag, 2, 1 + nb), SILENCE_DB)
        self._smooth = max(1, self.s.band_smooth_frames)
        self._phist = np.zeros((self._smooth - 1, 2, len(self.s.band_edges_hz) - 1))

    def process(self, frames: np.ndarray, allowed: np.ndarray | None = None,
                levels: np.ndarray | None = None) -> np.ndarray:
        """``frames`` (n, 2, FRAME_SAMPLES) → levels (n, 2); updates both channel detectors.

        ``allowed`` (n, 2) bool, optional: frames that may count as a party's talk at all (False
        where the call-state classifier hears music, tones or an IVR prompt). ``levels``, optional:
        :func:`frame_levels_db` of ``frames`` if the caller already has them (computed here if not)."""
        e = frame_levels_db(frames) if levels is None else levels  # (n, 2)
        if self.bands is not None:
            pw = self.bands(frames)  # (n, 2, n_bands)
            if self._smooth > 1:
                pw = np.concatenate([self._phist, pw])  # (k-1+n, 2, n_bands)
                self._phist = pw[-(self._smooth - 1) :]
                pw = np.lib.stride_tricks.sliding_window_view(pw, self._smooth, axis=0).mean(axis=-1)
            v = np.concatenate([e[:, :, None], _db(pw)], axis=-1)  # (n, 2, 1 + n_bands)
        else:
            v = e[:, :, None]
        ext = np.concatenate([self._hist, v])
        # Running max over the current and previous `lag` frames (one ufunc call per delay).
        lag, n = self.lag, len(v)
        vmax = ext[lag:].copy()
        for k in range(lag):
            np.maximum(vmax, ext[k : k + n], out=vmax)
        self._hist = ext[-lag:]
        emax = vmax[:, :, 0]
        talking, levels = [], []
        for c, ch in enumerate(self.channels):
            lvl = ch.speech_level_db()
            levels.append(lvl)
            thr = np.inf if lvl is None else lvl - self.s.leak_evidence_below_level_db
            talking.append(e[:, c] >= thr)
        al = (None, None) if allowed is None else (allowed[:, 0], allowed[:, 1])
        eb: list = [None, None]
        bmax: list = [None, None]
        if self.bands is not None:
            eb, bmax = [v[:, 0, 1:], v[:, 1, 1:]], [vmax[:, 0, 1:], vmax[:, 1, 1:]]
        self.channels[0].process(frames[:, 0], e[:, 0], emax[:, 1], talking[1], levels[1], al[0], eb[0], bmax[1])
        self.channels[1].process(frames[:, 1], e[:, 1], emax[:, 0], talking[0], levels[0], al[1], eb[1], bmax[0])
        return e
