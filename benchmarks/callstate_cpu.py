"""CPU cost of the call-state stage, measured side by side in one process (issue 12: ≤ 10 %).

For each call, two production analyzers — stage on and stage off, otherwise identical (pace and
cues on, tone off: ``analyze``'s pipeline as in ``benchmarks.pipeline_speed``) — are fed the same
1 s chunks in turn, the order alternating per chunk, and each feed is timed with
``time.process_time``. Load bursts from other jobs on a shared machine therefore fall on both
configurations alike (the method of the tone-share measurement in ``benchmarks.pipeline_speed``);
separate runs seconds apart on two workers moved the share by 5–15 points here. File decoding is
done once and not timed (it is the same for both). The share is ``on / off − 1`` over all calls.

Usage: ``python -m benchmarks.callstate_cpu CALL.wav …`` (prints the figures), or
:func:`interleaved_cpu` from ``benchmarks.callstate_accuracy``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pacelight.native_threads  # noqa: F401  (one BLAS thread, as on the device; before numpy work)


def interleaved_cpu(wav: str | Path) -> tuple[float, float]:
    """CPU seconds (stage on, stage off) of analysing ``wav``, fed chunk by chunk in turn."""
    from pacelight.analysis.callstate import CallStateSettings
    from pacelight.analysis.pipeline import PipelineSettings
    from pacelight.analysis.runner import build_analyzer, file_identity
    from pacelight.audio.wavfile import iter_blocks, probe

    from benchmarks.pipeline_speed import feed_in_turn

    info = probe(wav)
    ident = file_identity(info)
    blocks = list(iter_blocks(info, 1.0))
    analyzers = [build_analyzer(info.rate_hz, PipelineSettings(call_state=cs), ident, with_tone=False)
                 for cs in (CallStateSettings(), None)]
    on, off = feed_in_turn(analyzers, blocks, with_segments=True)
    return on, off


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.callstate_cpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("wavs", nargs="+", type=Path, help="call recordings (stereo WAV)")
    args = ap.parse_args(argv)
    on = off = 0.0
    for w in args.wavs:
        a, b = interleaved_cpu(w)
        on, off = on + a, off + b
        print(f"{w.name}: on {a:.3f} s, off {b:.3f} s ({100 * (a / b - 1):+.1f} %)")
    print(f"all: on {on:.2f} s, off {off:.2f} s ({100 * (on / off - 1):+.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
