"""The one frame clock shared by every analysis stage.

All audio is resampled once to ``SAMPLE_RATE_HZ`` and cut into frames of ``FRAME_MS``.
webrtcvad accepts 10/20/30 ms frames at 16 kHz; everything downstream (echo gating, turn
tracking, pace, tone windows, cues) counts time in these frames.
"""

SAMPLE_RATE_HZ = 16_000
FRAME_MS = 10
FRAME_SAMPLES = SAMPLE_RATE_HZ * FRAME_MS // 1000  # 160
FRAME_S = FRAME_MS / 1000.0

# The pipeline processes fixed blocks of frames (vectorised within a block). Fixed blocks make
# the result independent of how the caller chunks its audio; 50 ms keeps decision latency low.
BLOCK_FRAMES = 5
BLOCK_SAMPLES = BLOCK_FRAMES * FRAME_SAMPLES

MIN_INPUT_RATE_HZ = 8_000
MAX_INPUT_RATE_HZ = 48_000


def frames_to_s(n_frames: int) -> float:
    """Frame count → seconds on the frame clock."""
    return n_frames * FRAME_S


def s_to_frames(seconds: float) -> int:
    """Seconds → whole frames (rounded to nearest)."""
    return int(round(seconds / FRAME_S))
