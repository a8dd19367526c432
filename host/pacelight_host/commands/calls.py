"""``pacelight calls list --db URL --json``: the stored call summaries."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("calls", help="query stored call summaries")
    csub = p.add_subparsers(dest="calls_command", metavar="ACTION")
    lp = csub.add_parser("list", help="list stored calls (newest first)")
    lp.add_argument("--db", metavar="URL", help="sqlite:///PATH or postgresql://... (default: the "
                    "aggregator's SQLite file in the data directory)")
    lp.add_argument("--json", action="store_true", help="print a JSON array of the stored summaries")
    lp.add_argument("--device", metavar="ID", help="only this device")
    lp.add_argument("--limit", type=int, default=100_000, help="at most this many (default 100000)")
    lp.set_defaults(func=run_list)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_list(args: argparse.Namespace) -> int:
    from pacelight.edge.paths import default_data_dir
    from pacelight.errors import InputError

    from pacelight_host.store import CallFilters, Store

    if args.db:
        url = args.db
    else:
        path = default_data_dir() / "pacelight.sqlite"
        if not path.exists():
            raise InputError(f"no database at {path}; pass --db URL")
        url = f"sqlite:///{path.resolve()}"
    store = Store.open(url)
    try:
        rows = store.list_calls(CallFilters(device_id=args.device, limit=args.limit))
    finally:
        store.close()
    if args.json:
        json.dump([r["summary"] for r in rows], sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    for r in rows:
        ratio = "-" if r["agent_ratio"] is None else f"{r['agent_ratio']:.2f}"
        sys.stdout.write(f"{r['started_at'][:19]}Z  {r['device_id']:<20} {r['call_id']:<40} "
                         f"{r['duration_s']:8.1f} s  talk ratio {ratio}\n")
    return 0
