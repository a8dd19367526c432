"""Per-party streaming arousal tracker.

Feed the pipeline's 10 ms frames and that party's voice-activity flags; every ``hop_s`` (on the
frame clock) the tracker looks at the last ``window_s`` of audio and, if the party was active for at
least ``min_active_s`` of it, runs the model on that window and emits a
:class:`pacelight.events.ToneUpdate`. Frames where the party is not active are set to silence
before the window is normalised (echo, sidetone and room babble between words are not the party's
voice). Results never depend on how the caller blocks its frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pacelight.events import Party, ToneUpdate
from pacelight.frames import FRAME_S, FRAME_SAMPLES, s_to_frames
from pacelight.summary import PartyTone

from .features import N_MELS, POWER_FLOOR, WINDOW_FRAMES, StreamingLogMel, normalize_window
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

    def __init__(self, model: ToneModel | None = None, settings: ToneSettings | None = None,
                 party: Party = "agent") -> None:
        self.model = model if model is not None else ToneModel()
        self.settings = settings or ToneSettings()
        self.party: Party = party
        self._win = s_to_frames(self.settings.window_s)
        self._hop = s_to_frames(self.settings.hop_s)
        self._min_active = s_to_frames(self.settings.min_active_s)
        self._features = StreamingLogMel()
        self._lm = np.zeros((0, N_MELS), np.float32)
        self._act = np.zeros(0, bool)
        self._n = 0  # frames seen
        self._counts = np.zeros(3, np.int64)
        self._score_sum = 0.0
        self.latest: ToneUpdate | None = None

    def model_name(self) -> str:
        return self.model.name()

    def process(self, frames: np.ndarray, active: np.ndarray) -> list[ToneUpdate]:
        frames = np.asarray(frames, np.float32)
        active = np.asarray(active, bool).reshape(-1)
        if frames.ndim != 2 or frames.shape[1] != FRAME_SAMPLES or active.shape[0] != frames.shape[0]:
            raise ValueError(f"frames must be (n, {FRAME_SAMPLES}) with n activity flags")
        n = frames.shape[0]
        if n == 0:
            return []
        lm = np.concatenate([self._lm, self._features.process(frames)])
        act = np.concatenate([self._act, active])
        base = self._n - (len(lm) - n)  # absolute frame index of lm[0]
        updates: list[ToneUpdate] = []
        first = self._n + (-(self._n + 1)) % self._hop  # first frame index j with (j+1) % hop == 0
        for j in range(first, self._n + n, self._hop):
            end = j + 1 - base
            start = max(0, end - self._win)
            a = act[start:end]
            if int(a.sum()) < self._min_active:
                continue
            patch = lm[start:end]
            if self.settings.mask_inactive:
                patch = np.where(a[:, None], patch, np.float32(_SILENCE_DB))
            pred = self.model.predict_window(normalize_window(patch))
            upd = ToneUpdate(party=self.party, t_s=round((j + 1) * FRAME_S, 6), score=pred.score,
                             label=pred.label)  # type: ignore[arg-type]
            self._counts[LABELS.index(pred.label)] += 1
            self._score_sum += pred.score
            updates.append(upd)
        self._n += n
        keep = max(self._win - 1, 0)
        self._lm, self._act = lm[-keep:].copy(), act[-keep:].copy()
        if updates:
            self.latest = updates[-1]
        return updates

    def party_tone(self) -> PartyTone:
        total = int(self._counts.sum())
        if total == 0:
            return PartyTone.empty()
        low, neutral, high = (float(c) / total for c in self._counts)
        return PartyTone(low=low, neutral=neutral, high=high,
                         mean_score=float(min(max(self._score_sum / total, 0.0), 1.0)))
