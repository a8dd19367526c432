"""Pipeline speed and memory: real-time factor on one core, RSS over a 2-hour streamed call.

Targets (foundation issue): full pipeline without tone ≥ 100× real time on one core; memory
constant in call length (a 2-hour call stays under 150 MB RSS, streamed, never loaded whole).
The call is a real two-party recording (pyannote sample, looped) with echo and sidetone, fed in
1 s chunks exactly as `analyze` does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.report import table, write_section

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "misc" / "pyannote_sample.flac"
RATE = 16000


def looped_call(seconds: float, chunk_s: float = 1.0):
    """Yield (n, 2) chunks of a looped two-party call with leaks, never holding the whole call."""
    import soundfile as sf

    x, _ = sf.read(SAMPLE, dtype="float32")
    rng = np.random.default_rng(0)
    y = np.roll(x, len(x) // 3) * 0.6
    base = np.stack([x + 0.05 * np.roll(y, 160), y + 0.03 * np.roll(x, 80)], axis=1)
    base += rng.standard_normal(base.shape).astype(np.float32) * 0.002
    n_total = int(seconds * RATE)
    chunk = int(chunk_s * RATE)
    pos = 0
    while pos < n_total:
        k = min(chunk, n_total - pos)
        idx = (np.arange(pos, pos + k) % len(base))
        yield base[idx]
        pos += k


def run_once(seconds: float, with_tone: bool) -> dict:
    from pacelight.analysis.pipeline import CallIdentity
    from pacelight.analysis.runner import build_analyzer

    ident = CallIdentity("bench", "bench-call", datetime(2026, 1, 1, tzinfo=timezone.utc))
    a = build_analyzer(RATE, identity=ident, with_tone=with_tone)
    gen_cpu = 0.0
    t0 = time.process_time()
    rss = []
    for i, block in enumerate(looped_call(seconds)):
        a.feed(block)
        if i % 600 == 0:
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    s = a.finish()
    cpu = time.process_time() - t0 - gen_cpu
    return {"audio_s": seconds, "cpu_s": cpu, "rtf_x": seconds / cpu, "max_rss_mb": max(rss + [
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]), "rss_trace_mb": rss,
        "agent_s": s.talk.agent_s}


def child(argv: list[str]) -> int:
    seconds, tone = float(argv[0]), argv[1] == "1"
    print(json.dumps(run_once(seconds, tone)))
    return 0


def measure(seconds: float, tone: bool, runtime: str = "") -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PACELIGHT_TFLITE_RUNTIME=runtime)
    out = subprocess.run([sys.executable, "-m", "benchmarks.pipeline_speed", "--child", str(seconds),
                          "1" if tone else "0"], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--speed-s", type=float, default=600.0, help="audio seconds for the speed run")
    ap.add_argument("--long-s", type=float, default=7200.0, help="audio seconds for the memory run")
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child)
    speed = measure(args.speed_s, tone=False)
    speed_tone = measure(args.speed_s, tone=True)
    speed_litert = measure(args.speed_s, tone=True, runtime="ai_edge_litert")
    short = measure(args.long_s / 12, tone=True)
    long = measure(args.long_s, tone=True)
    tone_share = (speed_tone["cpu_s"] - speed["cpu_s"]) / speed["cpu_s"]
    litert_share = (speed_litert["cpu_s"] - speed["cpu_s"]) / speed["cpu_s"]
    rows = [
        ["pipeline, no tone", f"{speed['audio_s']:.0f}", f"{speed['cpu_s']:.2f}", f"{speed['rtf_x']:.0f}×", "≥ 100×"],
        ["pipeline + tone", f"{speed_tone['audio_s']:.0f}", f"{speed_tone['cpu_s']:.2f}",
         f"{speed_tone['rtf_x']:.0f}×", f"tone (tflite_runtime 2.14) adds {100 * tone_share:.0f} % (≤ 20 %)"],
        ["pipeline + tone (ai_edge_litert)", f"{speed_litert['audio_s']:.0f}", f"{speed_litert['cpu_s']:.2f}",
         f"{speed_litert['rtf_x']:.0f}×", f"tone (ai_edge_litert) adds {100 * litert_share:.0f} % (≤ 20 %)"],
    ]
    mem = [
        [f"{short['audio_s'] / 60:.0f} min", f"{short['max_rss_mb']:.0f}"],
        [f"{long['audio_s'] / 60:.0f} min", f"{long['max_rss_mb']:.0f}"],
    ]
    speed_ok = speed["rtf_x"] >= 100
    mem_ok = long["max_rss_mb"] < 150 and long["max_rss_mb"] - short["max_rss_mb"] < 10
    ok = speed_ok and mem_ok
    body = (
        "Real-time factor = audio seconds / CPU seconds of the analysing process (one core, "
        "single-threaded BLAS), audio fed in 1 s chunks as `analyze` does.\n\n"
        + table(["run", "audio s", "CPU s", "real-time factor", "target"], rows)
        + "\n\nPeak RSS of the whole process (Python, numpy, webrtcvad, TFLite) while streaming a call:\n\n"
        + table(["call length", "max RSS MB"], mem)
        + f"\n\nSpeed target ≥ 100× without tone: **{'met' if speed_ok else 'NOT met'}**. "
        f"Memory target < 150 MB and flat in call length: **{'met' if mem_ok else 'NOT met'}**. "
        "The call-state stage (on by default) is included; runs vary by ±10 % on this shared machine.\n"
    )
    write_section("pipeline_speed", "Pipeline speed and memory", body)
    print(body)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
