"""`pacelight demo` — a simulated shift end to end (devices → MQTT → aggregator → dashboard)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "run a simulated shift end to end: two desks, several calls and languages, live LED cue, dashboard"


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP + ". Finishes by itself (a few minutes).")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="work folder (replaced); default demo-out")
    p.add_argument("--calls", type=int, default=3, help="calls per agent (default 3)")
    p.add_argument("--seed", type=int, default=7, help="simulation seed (default 7)")
    p.add_argument("--call-s", type=float, default=75.0, help="length of each simulated call in seconds")
    p.add_argument("--live-speed", type=float, default=6.0,
                   help="replay speed of the first call, shown with its live LED cue (default 6× real time)")
    p.add_argument("--serve", action="store_true", help="keep the aggregator and dashboard running at the end")
    p.add_argument("--http-port", type=int, default=None, help="dashboard port (default: a free port)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pacelight.demo import run_demo
    from pacelight.errors import InputError

    if not 1 <= args.calls <= 50:
        raise InputError("--calls must be within 1..50")
    if not 20 <= args.call_s <= 1800:
        raise InputError("--call-s must be within 20..1800")
    if not 0 < args.live_speed <= 100:
        raise InputError("--live-speed must be within (0, 100]")
    return run_demo(args.out, args.calls, args.seed, args.live_speed, args.call_s, args.serve, args.http_port)
