"""Per-frame features of the call-state stage (``callstate.py``): spectral shape, DTMF, context decisions.

Pure numpy, streaming, one instance per call: :class:`FrameFeatures` (peak share, stationarity and
narrow-band count on a 20 ms clock, line-noise spectrum removed), :class:`DtmfDetector` (Goertzel-style
projections on the eight DTMF frequencies), :class:`ContextDecider` (music / tone decisions over a
context of the recent frames, per channel). The state machine that turns these into hold, IVR, mute
and talk masks is :class:`pacelight.analysis.callstate.CallStateTracker`; its module docstring explains
the rules and the settings (:class:`~pacelight.analysis.callstate.CallStateSettings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pacelight.analysis.activity import SILENCE_DB
from pacelight.frames import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE_HZ

if TYPE_CHECKING:
    from .callstate import CallStateSettings

SILENCE, SPEECH, MUSIC, TONE = 0, 1, 2, 3
CLASS_NAMES = ("silence", "speech", "music", "tone")

_NFFT = 256  # 16 ms analysis window, 62.5 Hz bins
_TOPK = 6
NOISE_FRAME_DB = 3.0  # frames this close to the floor are line noise
_NOISE_RATE = 0.1  # line-noise spectrum: share of a batch's quiet-frame mean taken in (≈ 4 s memory)
_CTX_HOPS = 2  # context stationarity: spectra 40 ms (2 hops of 20 ms) apart (past a syllable's glide)
DTMF_HZ = (697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0)
# DTMF background: the 20th percentile of the window energies of the 0.5 s before a frame (room
# babble, line noise, the gaps between digits) is taken out of a frame at least 6 dB over it
_BG_FRAMES = 50
_BG_RANK = 10
_BG_OVER = 4.0
_BG_MIN_SHARE = 0.45  # frames under this share of the whole window are not rescored (they stay under 0.6)


class FrameFeatures:
    """Streaming spectral features of one channel on a 20 ms clock: ``(frames (n, 160), t0)`` →
    peak share, 20 ms stationarity (3-bin smoothed), 40 ms stationarity and narrow-band count,
    each (n,) per 10 ms frame.

    One 16 ms Hann window per *pair* of frames (ending at the end of each odd frame of the global
    clock; an even frame repeats the previous odd frame's values): the features change over tens
    of milliseconds, and half the FFTs keep the stage's cost down. Depends only on the global
    frame index, so never on how the audio is chunked."""

    def __init__(self, band_low_hz: float, band_high_hz: float) -> None:
        freqs = np.fft.rfftfreq(_NFFT, 1.0 / SAMPLE_RATE_HZ)
        self._b0 = int(np.searchsorted(freqs, band_low_hz))
        self._b1 = int(np.searchsorted(freqs, band_high_hz, side="right"))
        self._window = np.hanning(_NFFT).astype(np.float32)
        self._tail = np.zeros(_NFFT - FRAME_SAMPLES, np.float32)  # the samples before the batch
        nb = self._b1 - self._b0
        self._lastmag = np.zeros((_CTX_HOPS, nb), np.float32)
        self._lastsm = np.zeros((1, nb - 2), np.float32)
        self._last = np.zeros((1, 4), np.float32)  # the last odd frame's values (for a leading even frame)
        self._noise = np.zeros(nb, np.float32)  # line-noise power spectrum (mean per bin)
        self._noise_seen = False
        self._idx: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def skip(self, frames: np.ndarray) -> None:
        """A batch not analysed (a quiet channel): the next batch's spectra compare with zeros."""
        self._tail = frames.reshape(-1)[-(_NFFT - FRAME_SAMPLES) :].copy()
        self._lastmag[:] = 0.0
        self._lastsm[:] = 0.0
        self._last[:] = 0.0

    def __call__(self, frames: np.ndarray, t0: int, quiet: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """``quiet`` (n,) bool, optional: frames at the channel's noise floor — their spectra
        update the line-noise spectrum, which is taken out (twice its mean per bin) before the
        tone features (peak share, narrow count, 20 ms stationarity), so a ringback or busy tone
        only a few dB over the line noise still looks like a tone."""
        import scipy.fft  # lazy: float32 FFTs (numpy 1.x always computes in float64)

        n = len(frames)
        x = np.concatenate([self._tail, frames.reshape(-1)])
        self._tail = x[-(_NFFT - FRAME_SAMPLES) :]
        first = (t0 + 1) % 2  # the batch's first odd frame
        key = (n, first)
        cached = self._idx.get(key)
        if cached is None:  # windows ending at the odd frames' ends; each frame's last odd frame
            odd = np.arange(first, n, 2)
            ends = (odd + 1) * FRAME_SAMPLES + (_NFFT - FRAME_SAMPLES)
            cached = self._idx[key] = (ends[:, None] - _NFFT + np.arange(_NFFT), (np.arange(n) - first) // 2 + 1, odd)
        idx, which, odd = cached
        if not len(idx):  # one even frame
            out = self._last[which]
            return out[:, 0], out[:, 1], out[:, 2], out[:, 3]
        # The windows (a strided view: 16 ms ending at each odd frame's end, 20 ms apart).
        win = np.lib.stride_tricks.as_strided(x[idx[0, 0] :], (len(idx), _NFFT), (2 * FRAME_SAMPLES * x.itemsize, x.itemsize),
                                              writeable=False)
        spec = scipy.fft.rfft(win * self._window, axis=-1)[:, self._b0 : self._b1]
        v = spec.view(np.float32).reshape(len(idx), -1, 2)
        pw = np.einsum("kbc,kbc->kb", v, v)  # |X|²
        if quiet is not None:
            q = quiet[odd]
            if q.any():  # the first quiet frames set it, later ones adjust it
                self._noise += (_NOISE_RATE if self._noise_seen else 1.0) * (pw[q].mean(0) - self._noise)
                self._noise_seen = True
        pt = np.maximum(pw - 2.0 * self._noise, 0.0)  # the tone features: line noise taken out
        tt = pt.sum(-1) + np.float32(1e-20)
        peak = np.partition(pt, -_TOPK, axis=-1)[:, -_TOPK:].sum(-1) / tt
        narrow = (pt > 0.01 * pt.max(-1, keepdims=True)).sum(-1)  # bins within 20 dB of the peak
        tot = pw.sum(-1) + np.float32(1e-20)
        mag = np.sqrt(pw / tot[:, None])
        allmag = np.concatenate([self._lastmag, mag])
        self._lastmag = allmag[-_CTX_HOPS:]
        st4 = np.einsum("nb,nb->n", allmag[_CTX_HOPS:], allmag[:-_CTX_HOPS])
        # Tones: 3-bin (±62.5 Hz) smoothed spectra 20 ms apart, so two-tone beating (ringback's
        # 440+480 Hz beats at 40 Hz inside one bin pair) does not look like a changing spectrum.
        sm = pt[:, :-2] + pt[:, 1:-1] + pt[:, 2:]
        sm = np.sqrt(sm / (sm.sum(-1, keepdims=True) + np.float32(1e-20)))
        allsm = np.concatenate([self._lastsm, sm])
        self._lastsm = allsm[-1:]
        st1 = np.einsum("nb,nb->n", allsm[1:], allsm[:-1])
        # Per frame: an odd frame its own values, an even frame the previous odd frame's.
        vals = np.concatenate([self._last, np.stack([peak, st1, st4, narrow], axis=1)])
        self._last = vals[-1:]
        out = vals[which]
        return out[:, 0], out[:, 1], out[:, 2], out[:, 3]


class DtmfDetector:
    """DTMF (ITU-T Q.23) per frame: projections of a 16 ms Hann window (ending at the frame's end)
    on the 4 low- and 4 high-group frequencies, normalised so that a pure tone gives 1; score =
    best low + best high share of the window's energy (≈ 1 for a digit, < 0.8 for speech). A frame
    at least 6 dB over the background (the 20th percentile of the window energies of the previous
    0.5 s: babble, line noise) is scored against its energy minus that background, so a digit keyed
    a few dB over the room's babble still scores near 1 (speech, far over the background, is scored
    as before; frames under ``_BG_MIN_SHARE`` of the whole window, which could not reach 0.6, keep
    that score and cost no background).

    The window spans the previous frame's last 96 samples and the current frame, so each frame is
    projected once on the window's head and tail parts and neighbours are summed (one matmul)."""

    def __init__(self) -> None:
        t = np.arange(_NFFT) / SAMPLE_RATE_HZ
        w = np.hanning(_NFFT)
        ph = 2 * np.pi * np.asarray(DTMF_HZ)[None, :] * t[:, None]
        norm = np.sqrt(w.sum() ** 2 / (2.0 * (w**2).sum()))
        basis = np.concatenate([w[:, None] * np.cos(ph), w[:, None] * np.sin(ph)], axis=1) / norm  # (256, 16)
        lag = _NFFT - FRAME_SAMPLES
        head = basis[lag:]  # the current frame's part of its own window
        tail = np.zeros((FRAME_SAMPLES, 16))
        tail[FRAME_SAMPLES - lag :] = basis[:lag]  # its last 96 samples in the next frame's window
        self._b = np.concatenate([head, tail], axis=1).astype(np.float32)  # (160, 32)
        w2 = w * w
        e = np.zeros((FRAME_SAMPLES, 2))
        e[:, 0] = w2[lag:]
        e[FRAME_SAMPLES - lag :, 1] = w2[:lag]
        self._e = e.astype(np.float32)
        self._prev_p = np.zeros(16, np.float32)  # the previous frame's tail projections
        self._prev_e = np.float32(0.0)  # ... and its tail window energy
        self._bg = np.zeros(_BG_FRAMES, np.float32)  # the window energies of the last _BG_FRAMES frames

    def skip(self, frames: np.ndarray) -> None:
        """Frames not scored: the last one's tail carries into the next frame's window (and their
        energies into the background)."""
        x = np.ascontiguousarray(frames[-_BG_FRAMES - 1 :], dtype=np.float32)
        en = (x * x).dot(self._e)
        if len(x) > _BG_FRAMES:  # the ring holds the last _BG_FRAMES frames only
            self._prev_e, en = en[0, 1], en[1:]
        self._window_energy(en)
        self._prev_p = x[-1:].dot(self._b)[0, 16:]

    def _window_energy(self, en: np.ndarray) -> np.ndarray:
        """Head and tail energies (n, 2) → each frame's window energy (the previous frame's tail
        plus its head); carries the last tail and updates the background ring."""
        e = en[:, 0].copy()
        e[0] += self._prev_e
        e[1:] += en[:-1, 1]
        self._prev_e = en[-1, 1]
        self._bg = np.concatenate([self._bg, e])[-_BG_FRAMES:]
        return e

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(frames, dtype=np.float32)  # a strided view would skip BLAS
        pr = x.dot(self._b)  # (n, 32): head and tail projections
        en = (x * x).dot(self._e)  # (n, 2): head and tail window energies
        head = pr[:, :16].copy()
        head[0] += self._prev_p
        head[1:] += pr[:-1, 16:]
        self._prev_p = pr[-1, 16:]
        ring = self._bg
        e = self._window_energy(en)
        head *= head
        p = head[:, :8] + head[:, 8:]
        p = p.reshape(-1, 2, 4).max(2).sum(1)
        score = p / (e + 1e-20)
        cand = np.flatnonzero(score >= _BG_MIN_SHARE)  # (taking out the background at most × 4/3)
        if len(cand):  # each one's background: the _BG_RANK-th smallest of the window energies before it
            prev = np.lib.stride_tricks.sliding_window_view(np.concatenate([ring, e]), _BG_FRAMES)[cand]
            bg = np.partition(prev, _BG_RANK, axis=1)[:, _BG_RANK]
            ec = e[cand]
            score[cand] = p[cand] / (np.where(ec >= _BG_OVER * bg, ec - bg, ec) + 1e-20)
        return score


class ContextDecider:
    """Music decisions and per-channel floors/peaks from the context rings (one call per batch)."""

    def __init__(self, s: CallStateSettings, n_channels: int = 2) -> None:
        self.s = s
        self.W = int(round(s.context_s / FRAME_S))
        self.Wd = int(round(s.dip_context_s / FRAME_S))
        self._lev = np.full((n_channels, self.W), SILENCE_DB)
        self._stat = np.zeros((n_channels, self.W))
        self._tone = np.zeros((n_channels, self.W), bool)
        self.music = np.zeros(n_channels, bool)
        self.floor_db = np.full(n_channels, np.nan)
        self._cut_frames = np.zeros(n_channels, int)
        self._seen = 0
        self.tone_frames = np.zeros(n_channels, int)  # tone frames within the last context_s
        self.tone_spread_db = np.full(n_channels, np.inf)
        self.tone_run = np.zeros(n_channels, int)  # receive path only
        self.run_min = max(1, int(round(s.machine_tone_s / FRAME_S)))
        self.p90_db = np.full(n_channels, SILENCE_DB)
        self.rx_tone_ctx = np.zeros(self.W, bool)
        self.hold = False  # set by the tracker: on hold (the receive path's floor does not rise)

    def tone_ring(self) -> np.ndarray:
        """Bridged receive-path tone flags over the last ``context_s`` (up to the last decision)."""
        return self.rx_tone_ctx

    def decide(self, levels: np.ndarray, stat: np.ndarray, tone: np.ndarray) -> list[bool]:
        """One analysis batch (m, 2) → the receive path's music verdict of each decision (one per
        ``decision_frames``, in order). The rings are extended once per batch and each decision
        reads its own context window from them; per-channel floors are scalar arithmetic."""
        W, m, step = self.W, len(levels), self.s.decision_frames
        lev_all = np.concatenate([self._lev, levels.T], axis=1)
        st_all = np.concatenate([self._stat[1], stat[:, 1]])  # stationarity: receive path only
        tn_all = np.concatenate([self._tone, tone.T], axis=1)
        self._lev, self._stat[1], self._tone = lev_all[:, -W:], st_all[-W:], tn_all[:, -W:]
        seen0 = self._seen
        self._seen = min(W, seen0 + m)
        verdicts = []
        for a in range(0, m, step):
            e = min(a + step, m)
            nd = min(W, seen0 + e)  # call start: only the frames seen so far
            w0, w1 = W + e - nd, W + e
            verdicts.append(self._decide_one(lev_all[:, w0:w1], st_all[w0:w1], tn_all[:, w0:w1], e - a))
        return verdicts

    def _decide_one(self, lev: np.ndarray, st1: np.ndarray, tn: np.ndarray, m: int) -> bool:
        s = self.s
        srt = np.sort(lev, axis=1)
        nv = srt.shape[1]
        p90, p10 = srt[:, int(0.9 * nv)], srt[:, int(0.1 * nv)]
        self.p90_db = p90
        # A sudden drop far under the floor is a cut (mute, line silence), not a new floor: the
        # floor holds for up to floor_hold_s, then follows. The floor rises slowly, and not at all
        # under music (held notes would lift it to the music) nor, on the receive path, on hold (a
        # hold message's pauses fall to its chord bed, which would lift the floor to the bed until
        # the bed looks like line noise).
        fl = self.floor_db
        for c in (0, 1):
            f, q = float(fl[c]), float(p10[c])
            cut = f == f and q < f - s.mute_below_floor_db  # (f == f: not nan)
            self._cut_frames[c] = self._cut_frames[c] + m if cut else 0
            if cut and self._cut_frames[c] * FRAME_S < s.floor_hold_s:
                continue
            rise = 0.0 if self.music[c] or (c == 1 and self.hold) else 10.0 * m * FRAME_S / s.floor_time_constant_s
            fl[c] = q if f != f or q < f else min(q, f + rise)
        f1 = float(fl[1])
        self.tone_frames[0] = np.count_nonzero(tn[0])  # agent: DTMF frames (the rest is receive path only)
        # Receive path: audible tone frames (not a hum in the line noise) with gaps of up to
        # tone_gap_frames bridged (two-tone beating minima, μ-law and window phase break single
        # frames of ringback and busy tones; tonal vowels do not form long runs even so).
        lev1 = lev[1]
        t1 = _bridge(tn[1] & (lev1 >= f1 + s.audible_db), s.tone_gap_frames)
        self.rx_tone_ctx = t1
        self.tone_frames[1] = nt = np.count_nonzero(t1)
        p90_1 = float(p90[1])
        act = lev1 >= p90_1 - s.active_db
        # The longest receive-path tone run in the context (call-progress tones are continuous for
        # ≥ 0.2 s, busy 0.5 s on) and the level spread of its tone frames (one level).
        self.tone_run[1], self.tone_spread_db[1] = 0, np.inf
        if nt >= self.run_min:
            e = np.flatnonzero(np.diff(np.concatenate(([False], t1, [False])).astype(np.int8)))
            self.tone_run[1] = int((e[1::2] - e[::2]).max(initial=0))
            tl = np.sort(lev1[t1 & act])
            if len(tl) >= 2:
                k = len(tl) - 1
                self.tone_spread_db[1] = tl[int(0.9 * k)] - tl[int(0.1 * k)]
        self.music[0] = False  # hold music is on the receive path only
        if not p90_1 >= f1 + s.music_above_floor_db:  # nothing loud enough to judge
            self.music[1] = False
            return False
        n_act = max(int(np.count_nonzero(act)), 1)
        ms = float(st1[act].sum()) / n_act
        tone_share = np.count_nonzero(t1 & act) / n_act
        dip = np.count_nonzero(lev1[-self.Wd :] < p90_1 - s.dip_db) / min(self.Wd, len(lev1))
        # A music bed: the quietest quarter of the context (speech pauses) is still far over the
        # floor, within bed_below_p90_db of the speech, and stationary — a message spoken over hold
        # music, not a caller in a quiet room.
        q = lev1 <= srt[1, nv // 4]
        nq = max(int(np.count_nonzero(q)), 1)
        bed_db = float(lev1[q].sum()) / nq
        bed = (bed_db >= f1 + s.bed_above_floor_db and bed_db >= p90_1 - s.bed_below_p90_db
               and float(st1[q].sum()) / nq >= s.bed_stationarity)
        self.music[1] = tone_share < 0.5 and ((ms >= s.music_stationarity and dip <= s.music_dip_share) or bed)
        return bool(self.music[1])


def _bridge(flags: np.ndarray, gap: int) -> np.ndarray:
    """``flags`` with runs of at most ``gap`` False frames between two True frames set True."""
    e = np.flatnonzero(np.diff(np.concatenate(([False], flags, [False])).astype(np.int8)))
    if len(e) < 4:
        return flags
    starts, ends = e[2::2], e[1:-1:2]  # the next run's start, the previous run's end
    fill = (starts - ends) <= gap
    if not fill.any():
        return flags
    d = np.zeros(len(flags) + 1, np.int32)
    d[ends[fill]] += 1
    d[starts[fill]] -= 1
    return flags | (np.cumsum(d[:-1]) > 0)
