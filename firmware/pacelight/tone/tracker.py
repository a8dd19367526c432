"""Per-party streaming arousal tracker.

Feed the pipeline's 10 ms frames and that party's voice-activity flags; every ``hop_s`` (on the
frame clock) the tracker looks at the last ``window_s`` of audio and, if the party was active for at
least ``min_active_s`` of it, runs the model on that window and emits a
:class:`pacelight.events.ToneUpdate`. Frames where the party is not active are set to silence
before the window is normalised (echo, sidetone and room babble between words are not the party's
voice). Results never depend on how the caller blocks its frames.

Features are computed lazily: ``process`` only copies raw samples and flags into a constant-size
buffer (the pipeline calls it every 50 ms); when a window is due and voiced enough, the log-mel rows
of its active frames not computed for the previous window (the other half overlaps) are computed in
one batch with :func:`pacelight.tone.features.logmel_frames` — the same function training uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pacelight.events import Party, ToneUpdate
from pacelight.frames import FRAME_S, FRAME_SAMPLES, s_to_frames
from pacelight.summary import PartyTone

from .features import HISTORY_SAMPLES, N_MELS, POWER_FLOOR, WINDOW_FRAMES, logmel_frames, normalize_window
from .model import LABELS, ToneModel

log = logging.getLogger(__name__)

_SILENCE_DB = float(10.0 * np.log10(POWER_FLOOR))


@dataclass(frozen=True, slots=True)
class ToneSettings:
    window_s: float = 2.0  # analysis window (the model's input length)
    hop_s: float = 1.0  # one decision per second
    min_active_s: float = 0.6  # voiced time needed in the window for a decision
    mask_inactive: bool = True  # silence frames where the party is not active

    def __post_init__(self) -> None:
        if not 0.5 <= self.window_s <= WINDOW_FRAMES * FRAME_S + 1e-9:
            raise ValueError(f"window_s must be in 0.5..{WINDOW_FRAMES * FRAME_S:.1f}")
        if not 0.1 <= self.hop_s <= 10.0:
            raise ValueError("hop_s must be in 0.1..10")
        if not 0.0 < self.min_active_s <= self.window_s:
            raise ValueError("min_active_s must be in (0, window_s]")


class ToneTracker:
    """``process(frames (n,160), active (n,) bool) -> list[ToneUpdate]``; ``party_tone()`` at call end."""

    _SLACK_FRAMES = 300  # buffer room beyond one window: the buffer is compacted every ~3 s

    def __init__(self, model: ToneModel | None = None, settings: ToneSettings | None = None,
                 party: Party = "agent") -> None:
        self.model = model if model is not None else ToneModel()
        self.settings = settings or ToneSettings()
        self.party: Party = party
        self._win = s_to_frames(self.settings.window_s)
        self._hop = s_to_frames(self.settings.hop_s)
        self._min_active = s_to_frames(self.settings.min_active_s)
        self._keep = max(self._win - 1, 1)  # frames a future window can still need
        cap = self._keep + self._SLACK_FRAMES
        # Raw samples of buffered frames, preceded by the HISTORY_SAMPLES their first window needs
        # (zeros before the start of the call, as in features.logmel); flags and log-mel rows aligned.
        self._x = np.zeros(HISTORY_SAMPLES + cap * FRAME_SAMPLES, np.float32)
        self._frames = self._x[HISTORY_SAMPLES:].reshape(cap, FRAME_SAMPLES)  # view into _x
        self._act = np.zeros(cap, bool)
        self._lm = np.zeros((cap, N_MELS), np.float32)
        self._cap = cap
        self._f0 = 0  # absolute frame index of buffer position 0
        self._fill = 0  # buffered frames
        self._lm_end = 0  # log-mel rows are valid for buffered frames before this absolute index
        self._n = 0  # frames seen
        self._counts = np.zeros(3, np.int64)
        self._score_sum = 0.0
        self.latest: ToneUpdate | None = None

    def model_name(self) -> str:
        return self.model.name()

    def process(self, frames: np.ndarray, active: np.ndarray) -> list[ToneUpdate]:
        frames = np.asarray(frames, np.float32)
        active = np.asarray(active, bool).reshape(-1)
        n = active.shape[0]
        if frames.shape != (n, FRAME_SAMPLES):
            raise ValueError(f"frames must be (n, {FRAME_SAMPLES}) with n activity flags")
        hop = self._hop
        updates: list[ToneUpdate] = []
        i = 0
        while i < n:  # usually one pass (a 50 ms block fits the buffer): one copy, no compaction
            if self._fill == self._cap:
                self._compact()
            k = min(n - i, self._cap - self._fill)
            p = self._fill
            self._frames[p:p + k] = frames[i:i + k]
            self._act[p:p + k] = active[i:i + k]
            self._fill = p + k
            n0, n1 = self._n, self._n + k
            self._n = n1
            i += k
            if n1 // hop != n0 // hop:  # windows end at multiples of hop in (n0, n1] (exclusive ends)
                updates += [u for e in range(n0 // hop * hop + hop, n1 + 1, hop) if (u := self._decide(e)) is not None]
        if updates:
            self.latest = updates[-1]
        return updates

    def _compact(self) -> None:
        """Move the last ``_keep`` frames (with their history samples) to the front of the buffer."""
        m = self._fill - self._keep
        self._x[: HISTORY_SAMPLES + self._keep * FRAME_SAMPLES] = self._x[
            m * FRAME_SAMPLES: m * FRAME_SAMPLES + HISTORY_SAMPLES + self._keep * FRAME_SAMPLES].copy()
        self._act[: self._keep] = self._act[m:self._fill].copy()
        self._lm[: self._keep] = self._lm[m:self._fill].copy()
        self._f0 += m
        self._fill = self._keep

    def _decide(self, end: int) -> ToneUpdate | None:
        """The decision for the window of frames ending before absolute frame ``end`` (None: too little voice)."""
        start = max(0, end - self._win)
        a, b = start - self._f0, end - self._f0
        act = self._act[a:b]
        if int(np.count_nonzero(act)) < self._min_active:
            return None
        c = max(a, self._lm_end - self._f0)  # rows before c were computed for the previous window
        if self.settings.mask_inactive:
            todo = c + np.flatnonzero(act[c - a:])
            self._lm[c:b] = _SILENCE_DB
        else:
            todo = np.arange(c, b)
        if todo.size:
            # positions are frame indices of the buffer's padded signal _x (history + frames)
            self._lm[todo] = logmel_frames(self._x[: HISTORY_SAMPLES + b * FRAME_SAMPLES], todo)
        self._lm_end = end
        pred = self.model.predict_window(normalize_window(self._lm[a:b]))
        self._counts[LABELS.index(pred.label)] += 1
        self._score_sum += pred.score
        return ToneUpdate(party=self.party, t_s=round(end * FRAME_S, 6), score=pred.score,
                          label=pred.label)  # type: ignore[arg-type]

    def party_tone(self) -> PartyTone:
        total = int(self._counts.sum())
        if total == 0:
            return PartyTone.empty()
        low, neutral, high = (float(c) / total for c in self._counts)
        return PartyTone(low=low, neutral=neutral, high=high,
                         mean_score=float(min(max(self._score_sum / total, 0.0), 1.0)))
