"""Run every benchmark in sequence (``make bench``)."""

import importlib
import sys

BENCHMARKS = [
    "benchmarks.analysis_accuracy",
    "benchmarks.pipeline_speed",
    "benchmarks.pace_accuracy",
    "benchmarks.tone_eval",
    "benchmarks.cue_latency",
    "benchmarks.mqtt_ingest",
    "benchmarks.callstate_accuracy",
    "benchmarks.api_queries",
    "benchmarks.edge_realtime",
    "benchmarks.rapport_cues",
]


def main() -> int:
    failed = []
    for name in BENCHMARKS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                print(f"[bench] {name}: not present, skipped")
                continue
            raise
        print(f"[bench] {name}", flush=True)
        if mod.main([]) != 0:
            failed.append(name)
    if failed:
        print("[bench] targets missed in: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
