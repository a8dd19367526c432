"""Call state: hold music, IVR prompts, tones and agent mute are not conversation (CONTRACT 3.3).

Runs on the pipeline's frame clock (16 kHz, 10 ms frames, called once per 50 ms block) before the
activity stage and tells it which frames may count as talk at all (the ``allowed`` mask).

**Per-frame features** (computed on the global frame clock, so they never depend on chunking):

* agent channel, per analysis batch (and on demand for the buffered frames when an agent stretch
  closes; only when some frame is ``audible_db`` over the agent's floor): a *DTMF score* per frame (16 ms Hann window projected on the 8 ITU-T Q.23 frequencies;
  best low + best high group share of the energy, ≈ 1 for a digit); digit runs (``dtmf_share``,
  with the activity's onset/release margins) are cut from the agent's closed stretches, so a
  block costs only a buffer copy;
* receive path, per analysis batch (skipped when the channel sits at its noise floor): one
  Hann-windowed 256-point rfft per pair of frames (20 ms clock; 16 ms ending at each odd frame's
  end), telephone band 250–3500 Hz: *peak share* (6 strongest bins / band energy), the number of
  bins within 20 dB of the peak, and *stationarity* — cosine similarity of the spectrum with the
  one 20 ms earlier (3-bin smoothed, so two-tone beating is stationary) and 40 ms earlier
  (context: speech changes formants every syllable, ≈ 0.75; held notes, chords and tones ≈ 0.9–1.0).
  The tone features use the spectrum minus twice the line-noise spectrum (learnt from frames at the
  floor), so a ringback or busy tone only a few dB over the line noise is still peaky.
  A *tone* frame is narrow (≤ ``tone_max_bins``), peaky and stationary; audible receive-path tone
  flags are bridged over gaps of ``tone_gap_frames`` (beating minima, μ-law and line noise break
  single frames of ringback and busy tones; tonal vowels still do not form long runs).

**Context decisions** every ``decision_frames`` (400 ms) on the global frame index, two per
``analysis_frames`` batch (800 ms: spectra, DTMF and the tracker's update run once per batch, which
keeps the stage's cost down; never on block boundaries): over the last ``context_s`` the mean stationarity of the frames within ``active_db``
of the loudest, and over the last ``dip_context_s`` the share of *dips* (frames ``dip_db`` under
the 90th-percentile level). Speech has 4–8 Hz syllable modulation and pauses (many dips); music is
sustained. Music = stationary and few dips. Sung passages are sustained notes (stationary, no
syllable dips), so they are music. Music needs its loud frames only ``music_above_floor_db`` over
the floor (the chord bed under a hold message sits ~10 dB over the line noise; noise itself is
never that stationary). A decision applies to the frames after it (no lookahead), so
``allowed`` is identical whatever the caller's block size — but not past a *pause* (the receive
path ``noise_pause_s`` at the line noise; a chord change dips for less) in or just before its own
span: the music stopped, and a busy tone's first beep or a caller after it is not music.

**Call-state tracker** (only what is known at that frame):

* *hold*: the receive path has carried music in ``hold_min_music_s`` of the last ``hold_window_s``
  (``music_mask_decisions`` music decisions in a row already mask it meanwhile; once the hold is
  recognised, the customer stretches since its first music frame are cut).
  While on hold every customer frame is excluded (messages spoken over the music, sung passages,
  note decays); the receive path is masked while the hold's last evidence is at most
  ``hold_unmask_s`` old, and customer stretches after it wait (``trim_customer``) until the hold
  resumes over them or closes, so a customer who talks as the music stops is heard. On hold the
  receive path's floor does not rise (a hold message's pauses
  fall to its chord bed, which would otherwise become the "line noise"), and tone frames inside a
  music verdict are held notes (music). The hold starts with the sound run its first music frame
  belongs to (back to the last two frames in a row down at the line noise — a message spoken over
  a chord bed never gets there, its chord changes dip for a frame; a noisy line does so often — at
  most ``hold_onset_s``) and its evidence includes the sound that continues
  the music without a pause: after a run of ≥ ``music_mask_decisions`` music decisions (even one
  that ends early in a batch), sound that stays over the line noise and at most ``bed_drop_db``
  under the music's quiet frames, without a ``bed_gap_s`` gap (a message or singing over the bed,
  whose pauses fall to the bed, where a caller's fall to the room), counts as music; any sound
  up to a ``hold_tail_gap_s`` pause extends the hold's end. Receive-path frames explained as the
  agent's line echo (see IVR) are neither music nor sound continuing it. Hold ends ``hold_release_s`` after the
  last evidence and is reported from its start to the last evidence frame. Once music masks the
  receive path, customer stretches closing meanwhile are cut from the music run's onset.
  Closed customer stretches are held back (``trim_customer``/``held_start``) until the batch after
  their end is decided, and while music heard in the last ``hold_window_s`` may still become a
  hold, so a first ring or beep or a hold's first seconds are cut even though they close before
  they are recognised.
  Limits: a short spoken hold (a message over the bed nearly all of it) whose bed sits at the line
  noise or whose pauses are too few to be decided music is customer talk; a customer who talks
  within ``hold_unmask_s`` of the music's end loses that part.
* *IVR* (a machine on the receive path): armed by machine evidence — a call-progress tone on the
  receive path (ringback: a continuous tone run of ``machine_tone_s``) before the conversation has
  started and before any receive-path speech, or the agent's own DTMF digits (several within
  ``context_s``) at any time: digits are keyed to a machine. While armed, receive-path sound is a
  prompt, not the customer; it disarms once the agent has talked ``agent_first_talk_s`` while the
  receive path is ``rx_quiet_below_machine_db`` under the machine's own level and no call-progress
  tone played within ``tone_hold_s`` (so echo of the ringback or prompt into the headset, or
  talking over a prompt, does not count; receive-path frames ``echo_below_agent_db`` under the
  agent's level are the agent's own line echo: they neither break "quiet" nor open a prompt
  stretch), or after ``agent_long_talk_s`` of agent talk in any
  case. Without machine evidence nothing is IVR, so a customer who speaks first on an ordinary
  call is counted. Limits: an IVR reached without ringback or DTMF (e.g. a blind transfer) is customer talk; a human who
  answers right after the agent's digits, before the agent speaks, is counted as IVR until the
  agent talks; an agent who talks over a prompt ends the IVR stretch.
* *tones*: agent DTMF frames are never agent talk; a receive-path call-progress tone (ringback,
  busy: a continuous run of ``machine_tone_s`` at one level, not during music) is cut, with
  ``tone_edge_frames`` of onset and decay, from both parties' stretches (its echo reaches the
  headset), and after it receive-path frames at the tone's level (within ``tone_level_db``) stay
  excluded for ``tone_hold_s`` (cadence onsets and beating). A call-progress tone after the
  conversation started (and no music in the last ``hold_window_s``: a sung note is not a busy
  tone) means the far end hung up (busy): cues stay quiet until ``rx_resume_s`` of receive-path
  speech, and once a pause at the line noise follows the tone (a busy cadence) agent stretches
  after it are not talk. Music decided after such a tone with no pause in between revokes it: it
  was a hold's first sung note (its level rule ends too). On hold a tone is a sung note unless the
  receive path paused at the line noise since the hold's last evidence (a busy tone after the
  hold).
* *mute*: most frames of analysis batches on the agent channel are ``mute_below_floor_db`` under
  its own noise floor (which falls at most ``mute_floor_fall_db_per_s``) and under ``mute_max_dbfs``
  (line silence or comfort noise) for at least ``mute_min_s`` after the agent has spoken. A
  channel whose floor is already digital silence (clean files) never reports mute. Limit: comfort
  noise at the level of the room's own noise (no drop) is not recognised. After an
  unmute, for ``unmute_settle_s`` (the activity's floor, pulled down by the silence, settles),
  agent frames under the pre-mute floor + ``unmute_talk_above_floor_db`` are line noise, not talk.

Apart from DTMF, call-progress tone and post-unmute noise frames the agent channel is never
masked (hold music does not reach the headset microphone), so the agent talking over the customer's
hold music still counts; only agent stretches that end while ringing, while a prompt plays (IVR
armed) or after a hang-up tone are dropped (``trim_agent``: talking to a machine, its echo or the
room's babble is not conversation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pacelight.analysis.activity import SILENCE_DB, frame_levels_db
from pacelight.frames import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE_HZ

from .callstate_features import (  # noqa: F401 (class labels re-exported for callers)
    CLASS_NAMES,
    MUSIC,
    NOISE_FRAME_DB,
    SILENCE,
    SPEECH,
    TONE,
    ContextDecider,
    DtmfDetector,
    FrameFeatures,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallStateSettings:
    enabled: bool = True  # [pipeline.call_state] enabled = false turns the stage off
    band_low_hz: float = 250.0
    band_high_hz: float = 3500.0
    analysis_frames: int = 80  # batches (spectra, DTMF, call-state update) every 800 ms of the frame clock
    decision_frames: int = 40  # context (music) decisions every 400 ms of it, within the batch
    tone_peak_share: float = 0.95
    tone_stationarity: float = 0.9
    tone_max_bins: int = 5  # a tone frame has at most this many 62.5 Hz bins within 20 dB of its peak
    dtmf_share: float = 0.8  # DTMF score (best low + best high group tone share of the energy)
    tone_min_s: float = 0.12  # agent DTMF within context_s that arms the IVR rule (a few digits)
    tone_spread_max_db: float = 10.0  # a call-progress tone's frames stay within this level range
    tone_hold_s: float = 4.5  # after a tone, receive-path frames at the tone's level stay excluded
    tone_level_db: float = 4.0  # two-tone beating moves 10 ms levels by a few dB
    tone_gap_frames: int = 4  # receive-path tone flags: gaps of up to this many frames are bridged
    tone_edge_frames: int = 2  # a call-progress tone run's onset/decay frames cut with it
    # A receive-path tone run this long (at one level): arms the level rule and cuts its frames;
    # before the conversation and before any receive-path speech, the IVR (ringback).
    machine_tone_s: float = 0.3
    context_s: float = 1.0
    dip_context_s: float = 0.5
    active_db: float = 20.0
    dip_db: float = 12.0
    music_stationarity: float = 0.84
    music_dip_share: float = 0.3
    # Music: its loud frames this far over the floor (a hold message's chord bed sits only ~9 dB over
    # the line noise; noise itself is never stationary enough to pass, so the margin can be small).
    music_above_floor_db: float = 6.0
    bed_above_floor_db: float = 10.0
    bed_stationarity: float = 0.87
    bed_below_p90_db: float = 20.0  # a bed sits under the speech, not down at the pauses' level
    audible_db: float = 10.0
    floor_time_constant_s: float = 20.0
    floor_hold_s: float = 60.0
    hold_window_s: float = 4.0
    music_mask_decisions: int = 2  # this many music decisions in a row mask the receive path at once
    hold_min_music_s: float = 2.0
    hold_release_s: float = 3.0
    hold_unmask_s: float = 0.5  # on hold, the receive path is masked only this long after the last evidence
    hold_onset_s: float = 4.0  # a hold starts with the sound run its first music frame is part of (≤ hold_window_s)
    noise_pause_s: float = 0.1  # the receive path this long at the line noise: a pause (not a chord change)
    hold_tail_gap_s: float = 0.2  # ... and ends with the sound after its last music up to such a pause
    bed_gap_s: float = 0.02  # sound after ≥ 2 music decisions without such a gap is hold evidence too
    # ... "sound": over the line noise and at most this far under the music's quiet frames (10th
    # percentile of the batch's music frames): a message's pauses fall to the bed, a caller's to the room
    bed_drop_db: float = 6.0
    ivr_gap_s: float = 1.5
    rx_resume_s: float = 0.5  # receive-path speech after a hang-up tone that resumes the conversation
    ivr_min_s: float = 0.1  # receive-path sound that opens an IVR stretch lasts at least this long
    agent_first_talk_s: float = 0.5  # agent talk that ends an IVR (receive path quiet meanwhile)
    agent_long_talk_s: float = 2.0  # ... or this much agent talk whatever the receive path does
    rx_quiet_below_machine_db: float = 15.0  # "quiet": this far under the machine's (prompt's) level
    # Receive-path frames under the agent's level (max over echo_max_delay_s) minus this are the
    # line echo of the agent's own talk, not the far end: they neither open an IVR stretch nor make
    # the receive path "not quiet" (hybrid echo is ≥ 10 dB down).
    echo_below_agent_db: float = 10.0
    echo_max_delay_s: float = 0.06
    mute_below_floor_db: float = 10.0
    mute_floor_fall_db_per_s: float = 0.5
    mute_max_dbfs: float = -55.0
    mute_min_s: float = 1.0
    # After a mute the activity's noise floor (pulled down by the silence) takes seconds to settle:
    # meanwhile agent frames under the pre-mute floor + this are line noise, not talk.
    unmute_settle_s: float = 10.0
    unmute_talk_above_floor_db: float = 6.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.band_low_hz < self.band_high_hz <= SAMPLE_RATE_HZ / 2:
            raise ValueError("band must satisfy 0 <= band_low_hz < band_high_hz <= 8000")
        if not 0.2 <= self.context_s <= 5.0 or not 0.1 <= self.dip_context_s <= self.context_s:
            raise ValueError("need 0.2 <= context_s <= 5 and 0.1 <= dip_context_s <= context_s")
        if not 2 <= self.analysis_frames <= 100:
            raise ValueError("analysis_frames must be within 2..100")
        if not 2 <= self.decision_frames <= self.analysis_frames or self.analysis_frames % self.decision_frames:
            raise ValueError("decision_frames must divide analysis_frames")
        if self.hold_min_music_s > self.hold_window_s:
            raise ValueError("hold_min_music_s must not exceed hold_window_s")
        if not 0.0 < self.tone_peak_share <= 1.0 or not 0.0 < self.tone_stationarity <= 1.0:
            raise ValueError("tone_peak_share and tone_stationarity must be within (0, 1]")
        for name in ("tone_min_s", "tone_hold_s", "machine_tone_s", "hold_release_s", "mute_min_s",
                     "agent_first_talk_s", "ivr_gap_s", "ivr_min_s", "floor_time_constant_s", "floor_hold_s",
                     "hold_onset_s", "hold_tail_gap_s", "hold_unmask_s", "noise_pause_s", "bed_gap_s", "bed_drop_db", "rx_resume_s", "unmute_settle_s", "tone_gap_frames", "tone_edge_frames"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


def _follow(flags: np.ndarray, carried: int, max_gap: int) -> tuple[bool, int, int]:
    """Follow a stretch through a batch's ``flags`` across gaps of fewer than ``max_gap`` False frames.

    ``carried``: False frames since the stretch's last True frame before the batch. Returns (still
    open, index in ``flags`` of the stretch's last True frame or -1, False frames after it at the
    batch's end — the next batch's ``carried``). Vectorised: the gap length at every frame is the
    distance to the latest True frame (plus ``carried`` before the first one).
    """
    k = np.arange(1, len(flags) + 1)
    run = k - np.maximum.accumulate(np.where(flags, k, 0))
    run += np.where(np.maximum.accumulate(flags), 0, carried)
    stop = np.flatnonzero(run >= max_gap)
    if len(stop):
        flags = flags[: stop[0]]
    on = np.flatnonzero(flags)
    return not len(stop), int(on[-1]) if len(on) else -1, int(run[-1])


def _recent(intervals: list[tuple[int, int]], horizon: int) -> list[tuple[int, int]]:
    """``intervals`` without those that ended before ``horizon`` (the list itself when none did)."""
    if intervals and intervals[0][1] < horizon:
        return [iv for iv in intervals if iv[1] >= horizon]
    return intervals


def _runs(open_start: int | None, flags: np.ndarray, t0: int) -> tuple[list[tuple[int, int]], int | None]:
    """Closed runs of True in ``flags`` (frames t0..) continuing an open run; → (runs, open start)."""
    f = np.concatenate(([open_start is not None], flags)).astype(np.int8)
    d = np.diff(f)
    starts = [int(v) for v in t0 + np.flatnonzero(d == 1)]
    ends = [int(v) for v in t0 + np.flatnonzero(d == -1)]
    if open_start is not None:
        starts.insert(0, open_start)
    runs = list(zip(starts, ends, strict=False))
    return runs, (starts[-1] if len(starts) > len(ends) else None)


def _cut(closed: list[tuple[int, int]], cut: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Frame intervals ``closed`` minus the intervals ``cut``."""
    out = []
    for a, b in closed:
        pieces = [(a, b)]
        for c0, c1 in cut:
            if c1 <= a or c0 >= b:
                continue
            pieces = [p for x, y in pieces for p in ((x, min(y, c0)), (max(x, c1), y)) if p[1] > p[0]]
        out += pieces
    return out


@dataclass(frozen=True)
class CallStateTotals:
    hold_s: float
    ivr_s: float
    mute_s: float


class CallStateTracker:
    """Frames → call state (hold, IVR, mute) and the ``allowed`` talk mask for the activity stage.

    Per block: ``allowed = tracker.process(frames, levels)`` before the activity stage, then
    ``tracker.observe_agent(agent_talking, n)`` with the activity's provisional agent state;
    ``trim_customer(closed)`` on the customer's closed raw stretches (drops the parts that turned
    out to be hold, IVR or sustained tone — hold and tones are recognised ~0.3–1.5 s after they
    start, and the activity closes a stretch only after its hangover, so they are known by then);
    ``finish()`` at the end of the call. ``allowed`` for a frame uses its own DTMF flag plus the
    state decided at analysis points before it (every ``analysis_frames`` frames of the global
    frame clock; the final partial batch is analysed in ``finish``), so chunking never changes it.
    """

    def __init__(self, settings: CallStateSettings | None = None) -> None:
        s = self.s = settings or CallStateSettings()
        self.features = FrameFeatures(s.band_low_hz, s.band_high_hz)
        self.dtmf = DtmfDetector()
        self.classifier = ContextDecider(s)
        self.frame_index = 0
        self._A = s.analysis_frames
        self._fbuf = np.zeros((self._A, 2, FRAME_SAMPLES), np.float32)
        self._lbuf = np.zeros((self._A, 2))  # their levels (dBFS), computed once by the caller
        self._dbuf = np.zeros(self._A, bool)
        self._dtmf_done = 0  # buffered frames whose DTMF flags are known
        self._allowed_cache: dict[tuple[int, bool], np.ndarray] = {}
        self._dtmf_runs: list[tuple[int, int]] = []  # recent agent DTMF runs (with margins)
        self._dtmf_pre = 3  # frames: the activity's onset may start a little before a digit
        self._dtmf_post = 16  # ... and releases release_hang_s (0.15 s) after it
        self._dtmf_min = 3  # frames: runs this long get the margins
        self._fill = 0
        self._hw = int(round(s.hold_window_s / FRAME_S))
        self._hmin = int(round(s.hold_min_music_s / FRAME_S))
        self._hrel = int(round(s.hold_release_s / FRAME_S))
        self._unmask = int(round(s.hold_unmask_s / FRAME_S))
        self._music_hist = np.zeros(self._hw, bool)  # customer music flags over hold_window_s
        self.on_hold = False
        self._hold_first: int | None = None
        self._run_first: int | None = None  # first frame of the current music run
        self._last_music = -(10**9)
        self._last_silent = -1  # last receive-path frame of a pause at the line noise analysed
        self._last_down = -1  # last frame of a run of >= 2 frames at the line noise (a hold's onset)
        self._pausef = max(1, int(round(s.noise_pause_s / FRAME_S)))
        self._down_run = 0  # receive-path frames at the line noise at the end of the last batch
        self._pause_tail = np.zeros(s.decision_frames, bool)  # pause flags of the last decision span
        self._onset = int(round(s.hold_onset_s / FRAME_S))
        self._gapf = max(1, int(round(s.hold_tail_gap_s / FRAME_S)))
        self._tail_end = 0  # end of the sound that continues the last music without a pause
        self._tail_open = False
        self._tail_gap = 0
        self._bed_open = False
        self._bed_end = 0  # end of the sound over the music bed after the last music
        self._bed_gap = 0
        self._bed_db = SILENCE_DB  # the level the sound over the bed stays at
        self._bedf = max(1, int(round(s.bed_gap_s / FRAME_S)))
        self.holds: list[tuple[int, int]] = []
        self.conversation_started = False  # the agent has talked agent_first_talk_s (rx quiet)
        self.ivr_active = False  # machine evidence seen, the agent has not talked since
        self._agent_talk_frames = 0  # agent talk (rx quiet) since the last machine evidence
        self._agent_any_frames = 0  # agent talk (any receive path) since then
        self.agent_talk_frames = 0  # all agent talk
        self._ivr: list[tuple[int, int]] = []
        self._ivr_open: list[int] | None = None
        self._ivr_gap = int(round(s.ivr_gap_s / FRAME_S))
        self._ivr_min = max(1, int(round(s.ivr_min_s / FRAME_S)))
        self._mute_start: int | None = None
        self._mute_floor = np.nan
        self._music_streak = 0  # consecutive music decisions on the receive path
        self._machine_level = SILENCE_DB
        self._rx_quiet = False  # not known to be quiet before the first analysis
        self.mutes: list[tuple[int, int]] = []
        self._unmute: tuple[int, int, float] | None = None  # (end of mute, end of settling, talk level)
        self._noise_runs: list[tuple[int, int]] = []  # agent line noise right after an unmute
        self._tone_min = max(1, int(round(s.tone_min_s / FRAME_S)))
        self._machine_tone = max(1, int(round(s.machine_tone_s / FRAME_S)))
        self._tone_until = -1
        self._tone_level = SILENCE_DB
        self._rx_speech_frames = 0
        self._tone_runs: list[tuple[int, int]] = []  # recent call-progress tone runs (both channels)
        self._ended_at: int | None = None  # a call-progress tone after the conversation: hung up
        self._rx_after_end = 0
        self._excluded: list[tuple[int, int]] = []  # recent receive-path stretches that are not talk
        self._echo_lag = max(1, int(round(s.echo_max_delay_s / FRAME_S)))
        self._agent_lev_tail = np.full(self._echo_lag, SILENCE_DB)  # agent levels before the batch
        self._lag_idx: dict[int, np.ndarray] = {}
        self._held: list[tuple[int, int]] = []  # closed customer stretches not decided yet
        self._analysed_to = 0  # frames analysed so far
        self._finished = False
        self.classes: list[np.ndarray] = []  # optional record (keep_classes)
        self.keep_classes = False

    @property
    def agent_has_spoken(self) -> bool:
        return self.conversation_started

    @agent_has_spoken.setter
    def agent_has_spoken(self, value: bool) -> None:  # tests and tools: start the conversation
        self.conversation_started = bool(value)
        if value:
            self.agent_talk_frames = max(self.agent_talk_frames, int(self.s.agent_first_talk_s / FRAME_S))

    @property
    def suppress_customer(self) -> bool:
        # On hold the receive path is masked while the music (or sound continuing it) is recent;
        # after hold_unmask_s without evidence a customer who talks as the music stops is heard
        # (their stretches wait in trim_customer until the hold resumes over them or closes).
        held = self.on_hold and self._analysed_to - self._hold_evidence() <= self._unmask
        return held or self.ivr_active or self._music_streak >= self.s.music_mask_decisions

    @property
    def quiet_for_cues(self) -> bool:
        """On hold, in an IVR stretch or after the far end hung up (busy tone): no cues."""
        return self.on_hold or self.ivr_active or self._ended_at is not None

    def process(self, frames: np.ndarray, levels: np.ndarray | None = None) -> np.ndarray:
        """One block (n, 2, FRAME_SAMPLES), optional levels (n, 2) dBFS → ``allowed`` (n, 2) bool.

        Per block the frames and their levels are only buffered; DTMF and spectra are computed per
        analysis batch (DTMF also on demand when an agent stretch closes, see ``trim_agent``).
        ``levels`` are :func:`~pacelight.analysis.activity.frame_levels_db` of ``frames``: the
        pipeline passes the activity stage's, so they are computed once per block; if omitted they
        are computed here (same values)."""
        n = frames.shape[0]
        t0 = self.frame_index
        f = self._fill
        if n <= self._A - f and self._tone_until < t0 and (self._unmute is None or t0 >= self._unmute[1]):
            # common case: the block lies inside one analysis batch, no per-frame rule applies
            self._fbuf[f : f + n] = frames
            self._lbuf[f : f + n] = frame_levels_db(frames) if levels is None else levels
            self._fill = f + n
            masked = self.suppress_customer
            if self._fill == self._A:
                self._analyse(t0 + n - self._A, self._A)
            self.frame_index = t0 + n
            return self._const_allowed(n, masked)
        allowed = np.ones((n, 2), bool)
        if levels is None:
            levels = frame_levels_db(frames)
        pos = 0
        while pos < n:  # segments end on the global analysis clock; state changes apply after them
            k = min(n - pos, self._A - self._fill)
            if self.suppress_customer:
                allowed[pos : pos + k, 1] = False
            if self._tone_until >= t0 + pos:  # recurring tones (cadences): frames at the tone's level,
                sl = slice(pos, pos + k)  # and the agent channel meanwhile (it carries their echo)
                t = t0 + pos + np.arange(k)
                ok = (t > self._tone_until) | (np.abs(levels[sl, 1] - self._tone_level) > self.s.tone_level_db)
                allowed[sl, 1] &= ok
                allowed[sl, 0] &= ok
            if self._unmute is not None and t0 + pos < self._unmute[1]:  # after a mute: the agent's line
                sl = slice(pos, pos + k)  # noise is not talk while the activity's floor settles
                allowed[sl, 0] &= ((t0 + pos + np.arange(k) >= self._unmute[1])
                                   | (levels[sl, 0] >= self._unmute[2]))
            f = self._fill
            self._fbuf[f : f + k] = frames[pos : pos + k]
            self._lbuf[f : f + k] = levels[pos : pos + k]
            self._fill += k
            pos += k
            if self._fill == self._A:
                self._analyse(t0 + pos - self._A, self._A)
        self.frame_index = t0 + n
        return allowed

    def _const_allowed(self, n: int, customer_masked: bool) -> np.ndarray:
        """A shared read-only (n, 2) mask: all allowed, or the receive path masked."""
        key = (n, customer_masked)
        a = self._allowed_cache.get(key)
        if a is None:
            a = np.ones((n, 2), bool)
            a[:, 1] = not customer_masked
            a.flags.writeable = False
            self._allowed_cache[key] = a
        return a

    def _dtmf_pending(self) -> None:
        """DTMF flags of the buffered agent frames not yet scored; new digit runs (with the
        activity's onset and release margins) join ``_dtmf_runs`` (cut from agent stretches)."""
        d0, d1 = self._dtmf_done, self._fill
        if d1 <= d0:
            return
        x = self._fbuf[d0:d1, 0]
        f0 = self.classifier.floor_db[0]
        # A digit is keyed loud (near the agent's talk level): frames at the noise floor are none.
        loud = np.isnan(f0) or bool((self._lbuf[d0:d1, 0] >= f0 + self.s.audible_db).any())
        if loud:
            flags = self.dtmf(x) >= self.s.dtmf_share
        else:
            flags = np.zeros(d1 - d0, bool)
            self.dtmf.skip(x)
        self._dbuf[d0:d1] = flags
        self._dtmf_done = d1
        if flags.any():
            # global index of buffered frame d0: the buffer starts where the last analysed batch
            # ended (frame_index is advanced only at the end of a block, which may already have
            # filled and analysed a batch, so it cannot serve here)
            t = self._analysed_to + d0
            runs, _open = _runs(None, np.concatenate([flags, [False]]), t)
            self._dtmf_runs += [(a - self._dtmf_pre, b + self._dtmf_post) if b - a >= self._dtmf_min else (a, b)
                                for a, b in runs]  # a digit lasts ≥ 40 ms; a voiced speech frame may score once

    def _analyse(self, t0: int, m: int) -> None:
        s = self.s
        self._dtmf_pending()
        dtmf = self._dbuf[:m]
        levels = self._lbuf[:m].copy()
        self._fill = self._dtmf_done = 0
        self._analysed_to = t0 + m
        stat = np.zeros((m, 2))
        tone = np.zeros((m, 2), bool)
        tone[:, 0] = dtmf
        rx_tone = tone[:, 1]
        f1 = self.classifier.floor_db[1]  # as of the last decision
        if np.isnan(f1) or np.count_nonzero(levels[:, 1] >= f1 + min(s.audible_db, s.music_above_floor_db)) >= 3:
            ref = float(levels[:, 1].min()) if np.isnan(f1) else f1  # no floor yet: the batch's quietest
            quiet = levels[:, 1] < ref + NOISE_FRAME_DB
            peak, st1, stat[:, 1], narrow = self.features(self._fbuf[:m, 1], t0, quiet)
            rx_tone[:] = (peak >= s.tone_peak_share) & (st1 >= s.tone_stationarity) & (narrow <= s.tone_max_bins)
        else:  # (almost) nothing on the receive path over its noise floor: no spectra (stat, tone 0)
            self.features.skip(self._fbuf[:m, 1])
        music_f = np.zeros(m, bool)  # each decision's music verdict for its own frames
        streak = self._music_streak
        music_streak = 0  # the streak at the batch's last music decision (a bed may follow it)
        self.classifier.hold = self.on_hold
        for a, music in zip(range(0, m, s.decision_frames), self.classifier.decide(levels, stat, tone), strict=True):
            music_f[a : a + s.decision_frames] = music
            streak = streak + 1 if music else 0
            music_streak = streak or music_streak
        floor = self.classifier.floor_db
        # Pauses down at the line noise (noise_pause_s at least: a chord change dips for less). A
        # music verdict (decided on the context before it) does not reach past such a pause: the
        # music stopped (a busy tone's first beep or a caller after the hold is not music).
        down = ~(levels[:, 1] >= floor[1] + NOISE_FRAME_DB)
        k = np.arange(1, m + 1)
        up = np.maximum.accumulate(np.where(down, 0, k))
        run = k - up + np.where(up == 0, self._down_run, 0)
        self._down_run = int(run[-1])
        pause = run >= self._pausef
        sil = np.flatnonzero(pause)
        dn = np.flatnonzero(run >= 2)  # a chord change dips for a frame; a noisy line's quiet runs are longer
        D = s.decision_frames
        p2 = np.concatenate([self._pause_tail, pause])  # with the previous batch's last decision
        self._pause_tail = p2[-D:]
        if p2.any():  # a pause in the last decision's span before a verdict, or since it: stale
            c = np.concatenate([[0], np.cumsum(p2)])
            d0 = k - 1 - (k - 1) % D  # each frame's decision start (index in ``pause``)
            music_f &= c[k + D] == c[d0]
        audible = levels >= floor + s.audible_db
        rx_tone_b = self.classifier.tone_ring()[-m:]  # bridged (beating minima, μ-law)
        cls = np.where(audible, SPEECH, SILENCE).astype(np.int8)
        cls[(levels[:, 1] >= floor[1] + s.music_above_floor_db) & music_f, 1] = MUSIC
        cls[tone] = TONE
        cls[rx_tone_b, 1] = TONE
        if self.on_hold:  # a held note of the hold music (busy tone: no music decision)
            cls[rx_tone_b & music_f & (levels[:, 1] >= floor[1] + s.music_above_floor_db), 1] = MUSIC
        if self.keep_classes:
            self.classes.append(cls)
        sustained = bool(self.classifier.tone_run[1] >= self._machine_tone
                         and self.classifier.tone_spread_db[1] <= s.tone_spread_max_db)
        # Not a sung note: no music decided now, and on hold the music stopped a while ago or the
        # receive path fell to the line noise since its last evidence (a bed never does; the
        # silence before a busy tone's first beep does).
        ev = self._hold_evidence()
        stopped = self._last_silent > ev or bool((sil >= ev + 1 - t0).any())
        music = bool(self.classifier.music[1]) or (self.on_hold and t0 + m - ev < self._onset and not stopped)
        if sustained and rx_tone_b.any() and not music:  # a call-progress tone (not a sung note): level
            idx = np.flatnonzero(rx_tone_b)  # rule, and its frames (with onset and decay) are not talk
            self._tone_until = t0 + int(idx[-1]) + int(round(s.tone_hold_s / FRAME_S))
            lt = levels[rx_tone & audible[:, 1], 1]
            self._tone_level = float(np.median(lt if len(lt) else levels[rx_tone_b, 1]))
            ring = self.classifier.tone_ring()  # the whole context: the tone's first frames too
            runs, _open = _runs(None, np.concatenate([ring, [False]]), t0 + m - len(ring))
            g = s.tone_edge_frames
            runs = [(a - g, b + g) for a, b in runs]
            self._excluded += runs
            self._tone_runs += runs
            # busy: the far end hung up (not a sung note while music is still in the hold window)
            if self.conversation_started and self._ended_at is None and runs and not self._music_hist.any():
                self._ended_at = runs[-1][0]
                self._rx_after_end = 0
                log.debug("call state: far end hung up at %.2f s", self._ended_at * FRAME_S)
        # ---- machine evidence: ringback before the conversation, or the agent's DTMF digits
        ring = sustained and not self.conversation_started and self._rx_speech_frames < self._machine_tone
        if ring or self.classifier.tone_frames[0] >= self._tone_min:
            if not self.ivr_active:
                log.debug("call state: IVR armed at %.2f s", t0 * FRAME_S)
            self.ivr_active = True
            self._agent_talk_frames = self._agent_any_frames = 0
        # The machine's level (ringback, prompts) while armed: agent talk counts towards disarming
        # only while the receive path is far under it (not talking over a prompt; echo is weaker).
        if self.ivr_active:
            self._machine_level = max(self._machine_level, float(self.classifier.p90_db[1]))
        far = self._far_end(levels)
        self._rx_quiet = not bool((far & (levels[:, 1] >= self._machine_level - s.rx_quiet_below_machine_db)).any())
        self._music_streak = streak
        # ---- hold: music on the receive path
        if self.classifier.tone_frames[1] == 0:  # receive-path speech (not ringback onsets and gaps)
            self._rx_speech_frames += int((cls[:, 1] == SPEECH).sum())
        if self._ended_at is not None:  # receive-path speech after the tone: a call again
            after = np.arange(t0, t0 + m) > self._tone_until
            self._rx_after_end += int(((cls[:, 1] == SPEECH) & after).sum())
            if self._rx_after_end * FRAME_S >= s.rx_resume_s:
                self._ended_at = None
        if self._ended_at is not None and streak >= s.music_mask_decisions \
                and self._last_silent < self._ended_at and not (sil >= self._ended_at - t0).any():
            # music decided after a "busy tone" with no pause at the line noise since: it was the
            # music's first (sung) note — no hang-up, and its level rule (agent channel too) ends
            self._ended_at = None
            self._tone_until = min(self._tone_until, t0 + m - 1)
        cm = (cls[:, 1] == MUSIC) & far  # not the line echo of the agent talking after the music
        if cm.any():
            idx = np.flatnonzero(cm)
            if self._run_first is None or t0 + idx[0] - self._last_music > self._hrel:
                # The music's onset: the sound run it starts with (frames before the first music
                # decision), back to the last frame down at the line noise (a hold message over a
                # chord bed never gets there), at most hold_onset_s earlier.
                before = dn[dn < idx[0]]
                last_sil = t0 + int(before[-1]) if len(before) else self._last_down
                first = t0 + int(idx[0])
                self._run_first = max(first - self._onset, last_sil + 1, 0)
            self._last_music = t0 + int(idx[-1])
            self._tail_end = self._last_music + 1
            self._tail_open = True
            self._tail_gap = 0
            self._bed_open = music_streak >= s.music_mask_decisions
            self._bed_end = self._last_music + 1
            ml = np.sort(levels[idx, 1])  # the bed: not under the music's quiet frames (minus bed_drop_db)
            self._bed_db = max(float(ml[len(ml) // 10]) - s.bed_drop_db, float(floor[1]) + NOISE_FRAME_DB)
            self._bed_gap = 0
        if self._tail_open:  # after the music, the sound that continues without a pause belongs to it
            start = self._tail_end - t0
            start = max(start, 0)
            a = audible[start:, 1] & (cls[start:, 1] != TONE) & far[start:]
            if len(a):
                still, last, self._tail_gap = _follow(a, self._tail_gap, self._gapf)  # silence carried over
                if not still:
                    self._tail_open = False
                if last >= 0:
                    self._tail_end = t0 + start + last + 1
        if self._bed_open:  # a spoken or sung passage over the music bed: the sound never falls to
            start = max(self._bed_end - t0, 0)  # the line noise (not even in the message's pauses,
            a = levels[start:, 1] >= self._bed_db  # where the bed may be under audible_db)
            if len(a):
                still, last, self._bed_gap = _follow(a, self._bed_gap, self._bedf)
                if not still:
                    self._bed_open = False
                if last >= 0:
                    cm[start : start + last + 1] = True
                    self._bed_end = t0 + start + last + 1
        self._music_hist = np.concatenate([self._music_hist, cm])[-self._hw :]
        if len(sil):
            self._last_silent = t0 + int(sil[-1])
        if len(dn):
            self._last_down = t0 + int(dn[-1])
        t_end = t0 + m
        if not self.on_hold:
            if int(self._music_hist.sum()) >= self._hmin:
                self.on_hold = True
                first = self._run_first if self._run_first is not None else t0
                self._hold_first = max(first, self.holds[-1][1]) if self.holds else first
        elif t_end - self._hold_evidence() > self._hrel:
            self._close_hold()
        # ---- IVR: receive-path sound (not music, not tone) while a machine is on the line
        if self.ivr_active and not self.on_hold:
            idx = t0 + np.flatnonzero((cls[:, 1] == SPEECH) & far)  # not the agent's echo
            if len(idx):
                gap = int(round(s.ivr_gap_s / FRAME_S))
                breaks = np.flatnonzero(np.diff(idx) > gap)
                starts = np.concatenate(([idx[0]], idx[breaks + 1]))
                ends = np.concatenate((idx[breaks], [idx[-1]])) + 1
                for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                    if self._ivr_open is not None and a - self._ivr_open[1] <= gap:
                        self._ivr_open[1] = b
                    elif b - a >= self._ivr_min:  # not a stray frame (a tone's decay, a click)
                        self._close_ivr()
                        self._ivr_open = [a, b]
        # ---- mute: the agent channel far below its own noise floor after the agent has spoken
        # The agent's floor for this falls at most mute_floor_fall_db_per_s (a mute is a drop, not a
        # new floor); each batch is muted when most of its frames are far under it.
        f0 = floor[0]
        if not np.isnan(f0):
            mf = self._mute_floor - s.mute_floor_fall_db_per_s * m * FRAME_S
            self._mute_floor = f0 if np.isnan(mf) or f0 > mf else mf
        f0 = self._mute_floor
        if self.agent_talk_frames * FRAME_S >= s.agent_first_talk_s and not np.isnan(f0) \
                and f0 > SILENCE_DB + s.mute_below_floor_db:
            quiet = levels[:, 0] < min(s.mute_max_dbfs, f0 - s.mute_below_floor_db)
            share = np.count_nonzero(quiet) / m
            muted = share >= (0.5 if self._mute_start is not None else 0.7)
            if muted and self._mute_start is None:
                self._mute_start = t0 + int(np.argmax(quiet))
            elif not muted and self._mute_start is not None:
                end = t0 + int(np.argmin(quiet))
                if end - self._mute_start >= s.mute_min_s / FRAME_S:  # unmuted: the line noise is back
                    self._unmute = (end, end + int(round(s.unmute_settle_s / FRAME_S)),
                                    f0 + s.unmute_talk_above_floor_db)
                    k = end - t0  # this batch's frames since the unmute were not masked yet
                    noise = levels[k:, 0] < self._unmute[2]
                    runs, _open = _runs(None, np.concatenate([noise, [False]]), end)
                    self._noise_runs += runs
                self._add_mutes([(self._mute_start, end)])
                self._mute_start = None
        horizon = t_end - int(60.0 / FRAME_S)
        self._excluded = _recent(self._excluded, horizon)
        self._tone_runs = _recent(self._tone_runs, horizon)
        self._noise_runs = _recent(self._noise_runs, horizon)
        self._dtmf_runs = _recent(self._dtmf_runs, horizon)

    def trim_agent(self, closed: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The agent's closed raw stretches minus the call-progress tone runs known by now (their
        echo in the headset microphone is not the agent talking); while a machine is on the line
        (IVR armed, ringing or a prompt playing) none: talking to a machine, echo of its prompts or
        the room's babble before the call connects is not conversation (the agent's greeting after
        the prompt, which ends the IVR, is kept)."""
        if not closed:
            return closed
        self._dtmf_pending()
        if self.ivr_active and (self._ivr_open is None or self.frame_index - self._ivr_open[1] <= self._ivr_gap
                                or self.frame_index <= self._tone_until):
            return []  # ringing before a prompt, or a prompt playing: keep only what stays open
        cut = self._tone_runs + self._dtmf_runs + self._noise_runs
        if self._ended_at is not None and self._last_silent > self._ended_at:  # a busy cadence:
            cut.append((self._ended_at, 1 << 62))  # the tone, then a pause at the line noise
        return _cut(closed, cut) if cut else closed

    def trim_customer(self, closed: list[tuple[int, int]], final: bool = False) -> list[tuple[int, int]]:
        """The customer's closed raw stretches (frame intervals) minus the receive-path stretches
        known by now to be hold, IVR or call-progress tones.

        A stretch is held back until the analysis batch after the one its end falls in has been
        decided: a tone or music is recognised a few hundred ms after it starts, and a short
        burst (the first ring, the first busy beep) closes before that; held stretches come out
        of a later call, in order (``held_start`` tells the segmenter). ``final``: the call ended
        (the last partial batch is analysed and everything is released)."""
        if final and self._fill:
            self._analyse(self.frame_index - self._fill, self._fill)
        if not closed and not self._held:
            return closed
        held = self._held + closed
        if final or self._finished:
            take, self._held = held, []
        else:
            ready = self._analysed_to - self._A
            if not self.on_hold and self._run_first is not None and self._music_hist.any():
                ready = min(ready, self._run_first)  # music heard: a hold may be forming, wait for it
            elif self.on_hold:  # after the hold's last evidence: wait until it resumes or closes
                ready = min(ready, self._hold_evidence() + 1)
            k = 0
            while k < len(held) and held[k][1] <= ready:
                k += 1
            take, self._held = held[:k], held[k:]
        if not take:
            return take
        cut = list(self._excluded)
        if self.on_hold and self._hold_first is not None:
            cut.append((self._hold_first, 1 << 62))
        elif self._music_streak >= self.s.music_mask_decisions and self._run_first is not None:
            cut.append((self._run_first, 1 << 62))  # music masks the receive path: from its onset
        if self._ivr_open is not None:
            cut.append((self._ivr_open[0], 1 << 62))
        return _cut(take, cut) if cut else take

    def held_start(self, next_start: int) -> int:
        """The earliest frame a customer stretch still to come out of ``trim_customer`` may start at."""
        return min(next_start, self._held[0][0]) if self._held else next_start

    def observe_agent(self, talking: bool, n: int) -> None:
        """The activity stage's provisional agent state after a block of ``n`` frames."""
        if not talking:
            return
        if self.ivr_active:  # keying digits to the machine is not talking to it
            self._dtmf_pending()
            t1 = self.frame_index
            n -= sum(max(0, min(b, t1) - max(a, t1 - n)) for a, b in self._dtmf_runs[-8:])
            if n <= 0:
                return
        self.agent_talk_frames += n
        if self.frame_index <= self._tone_until:  # ringing: the agent channel carries its echo
            return
        self._agent_any_frames += n
        if self._rx_quiet:  # not over a prompt
            self._agent_talk_frames += n
        if self._agent_talk_frames * FRAME_S >= self.s.agent_first_talk_s \
                or self._agent_any_frames * FRAME_S >= self.s.agent_long_talk_s:
            self.conversation_started = True
            if self.ivr_active:
                self.ivr_active = False
                self._close_ivr()

    def _far_end(self, levels: np.ndarray) -> np.ndarray:
        """Receive-path frames of this batch not explained as line echo of the agent's talk."""
        a = np.concatenate([self._agent_lev_tail, levels[:, 0]])
        self._agent_lev_tail = a[-self._echo_lag :]
        m = len(levels)
        idx = self._lag_idx.get(m)
        if idx is None:  # each frame and the echo_lag frames before it
            idx = self._lag_idx[m] = np.arange(m)[:, None] + np.arange(self._echo_lag + 1)
        return levels[:, 1] >= a[idx].max(1) - self.s.echo_below_agent_db

    def _hold_evidence(self) -> int:
        """The last receive-path frame of music, or of sound continuing it without a pause."""
        return max(self._last_music, self._tail_end - 1, self._bed_end - 1)

    def _close_hold(self) -> None:
        if self._hold_first is not None:
            self.holds.append((self._hold_first, self._hold_evidence() + 1))
            self._excluded.append(self.holds[-1])
        self.on_hold = False
        self._hold_first = None

    def _close_ivr(self) -> None:
        if self._ivr_open is not None:
            self._ivr.append((self._ivr_open[0], self._ivr_open[1]))
            self._excluded.append(self._ivr[-1])
            self._ivr_open = None

    def _add_mutes(self, runs: list[tuple[int, int]]) -> None:
        mn = self.s.mute_min_s / FRAME_S
        self.mutes += [(a, b) for a, b in runs if b - a >= mn]

    def finish(self) -> CallStateTotals:
        """Analyse the last partial batch, close open stretches and return the totals."""
        if self._fill:
            self._analyse(self.frame_index - self._fill, self._fill)
        if self.on_hold:
            self._close_hold()
        self._close_ivr()
        if self._mute_start is not None:
            self._add_mutes([(self._mute_start, self.frame_index)])
            self._mute_start = None
        self._finished = True
        return self.totals()

    def totals(self) -> CallStateTotals:
        def tot(iv: list[tuple[int, int]]) -> float:
            return round(sum(b - a for a, b in iv) * FRAME_S, 3)

        return CallStateTotals(hold_s=tot(self.holds), ivr_s=tot(self._ivr), mute_s=tot(self.mutes))

    def intervals_s(self) -> dict[str, list[list[float]]]:
        def conv(iv: list[tuple[int, int]]) -> list[list[float]]:
            return [[round(a * FRAME_S, 3), round(b * FRAME_S, 3)] for a, b in iv]

        return {"holds": conv(self.holds), "ivr": conv(self._ivr), "mutes": conv(self.mutes)}
