"""Dashboard API query latency with 1,000,000 stored calls (SQLite).

Generates a year of calls (500 devices = 500 agents in 50 teams, realistic ~0.7 KB summary JSON per
row) inserted in bulk directly into the store's SQLite tables (``calls`` plus the dashboard's
``call_facts``), then creates the dashboard schema (indexes, triggers, the day × agent and
month × agent rollups built from the calls) and times each query the dashboard pages issue through
:class:`pacelight_host.api.queries.Queries`, and full HTTP requests through the FastAPI app.
Target: every query ≤ 200 ms (median of 5 warm runs; the max is reported too). Also checks the
rollup results against the row-level reference on the same data, and measures the write-side
cost (ingest through the store with the triggers; one desk re-seating in the past).

    .venv/bin/python -m benchmarks.api_queries [--calls N] [--db PATH] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TARGET_MS = 200.0
DEVICES = 500
TEAMS = 50
END = datetime(2026, 11, 23, tzinfo=UTC)


def _summary_template() -> str:
    from pacelight.summary import example_summary

    return json.dumps(example_summary("@CALL@", "@DEV@", started_at="@TS@",
                                      model={"tone": "tone-int8 1.0", "pipeline": "pacelight 0.1.0"}))


def generate(path: Path, n_calls: int, seed: int = 7) -> float:
    """Bulk-insert ``n_calls`` rows; returns seconds taken."""
    import numpy as np
    from pacelight_host.api.schema import FACT_COLUMNS
    from pacelight_host.store import METRIC_NAMES, Store, iso

    t0 = time.perf_counter()
    Store.open(f"sqlite:///{path}").close()          # the store's own schema
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("CREATE TABLE IF NOT EXISTS call_facts (call_id TEXT PRIMARY KEY, "
                 + ", ".join(f"{c} REAL" for c in FACT_COLUMNS) + ")")
    rng = np.random.default_rng(seed)
    span_s = 365 * 86400
    start = END - timedelta(seconds=span_s)
    offs = np.sort(rng.integers(0, span_s, n_calls))
    dev = rng.integers(0, DEVICES, n_calls)
    dur = rng.gamma(4.0, 60.0, n_calls).clip(10, 7200)
    agent_s = dur * rng.uniform(0.2, 0.5, n_calls)
    cust_s = dur * rng.uniform(0.2, 0.5, n_calls)
    pace = rng.normal(4.8, 0.7, n_calls).clip(1.5, 9.0)
    pace_null = rng.random(n_calls) < 0.05
    inter_a = rng.poisson(1.0, n_calls)
    inter_c = rng.poisson(1.2, n_calls)
    tone_h = rng.uniform(0, 0.4, n_calls)
    tone_l = rng.uniform(0, 0.4, n_calls)
    tmpl = _summary_template()
    cols = ("call_id", "device_id", "agent_id", "schema_version", "started_at", "received_at", *METRIC_NAMES,
            "summary")
    ins = f"INSERT INTO calls ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    ins_f = f"INSERT INTO call_facts (call_id, {', '.join(FACT_COLUMNS)}) VALUES ({', '.join('?' * (1 + len(FACT_COLUMNS)))})"
    batch = 50_000
    for b in range(0, n_calls, batch):
        rows, facts = [], []
        for i in range(b, min(n_calls, b + batch)):
            ts = iso(start + timedelta(seconds=int(offs[i])))
            cid = f"call-{i:08d}"
            d = f"dev-{int(dev[i]):04d}"
            p = None if pace_null[i] else float(pace[i])
            a, c = float(agent_s[i]), float(cust_s[i])
            rows.append((cid, d, f"agent-{int(dev[i]):04d}", "pacelight.call-summary/1", ts, ts,
                         float(dur[i]), a, c, float(dur[i]) - a - c, 2.0, a / (a + c), int(inter_a[i] + inter_c[i] + 1),
                         int(inter_a[i]), int(inter_c[i]), p, 4.1, 21.0, float(tone_h[i]), 0.45, 0.3, 0.55, 1,
                         tmpl.replace("@CALL@", cid).replace("@DEV@", d).replace("@TS@", ts[:19] + "Z")))
            facts.append((cid, 2, 4, 14.0, float(tone_l[i]), 1.0 - float(tone_l[i]) - float(tone_h[i]),
                          0.1, 0.6, 0, 0, 1, 0))
        conn.execute("BEGIN")
        conn.executemany(ins, rows)
        conn.executemany(ins_f, facts)
        conn.execute("COMMIT")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO devices (device_id, state, version, first_seen, last_seen, calls_received) "
                     "VALUES (?, ?, '0.1.0', ?, ?, 0)",
                     [(f"dev-{k:04d}", "online" if k % 7 else "offline", iso(start), iso(END)) for k in range(DEVICES)])
    conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - t0


def seed_registry(store) -> None:
    from pacelight_host.store import iso

    rows_t = [(f"team-{t:02d}", f"Team {t:02d}") for t in range(TEAMS)]
    rows_a = [(f"agent-{k:04d}", f"Agent {k:04d}", f"team-{k % TEAMS:02d}") for k in range(DEVICES)]
    rows_s = [(f"dev-{k:04d}", f"agent-{k:04d}", iso(END - timedelta(days=400))) for k in range(DEVICES)]
    with store.transaction() as conn:
        conn.executemany("INSERT INTO teams (team_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING", rows_t)
        conn.executemany("INSERT INTO agents (agent_id, name, team_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", rows_a)
        if not conn.execute("SELECT 1 FROM assignments LIMIT 1").fetchone():
            conn.executemany("INSERT INTO assignments (device_id, agent_id, valid_from) VALUES (?, ?, ?)", rows_s)


def _has_rollup(path: Path) -> bool:
    conn = sqlite3.connect(str(path))
    try:
        return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'dash_rollup_meta'").fetchone())
    finally:
        conn.close()


def _same(a: list[dict], b: list[dict]) -> bool:
    import math

    if [(r["key"], r["period"]) for r in a] != [(r["key"], r["period"]) for r in b]:
        return False
    for x, y in zip(a, b, strict=True):
        for k, u in x.items():
            v = y[k]
            if isinstance(u, float) or isinstance(v, float):
                if u is None or v is None or not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif u != v:
                return False
    return True


def _write_costs(store, q) -> tuple[float, float]:
    """(calls/s stored through the store's write path, ms for one desk re-seating 180 days back)."""
    from pacelight.summary import CallSummary

    tmpl = json.loads(_summary_template())
    summaries = []
    for i in range(2000):
        d = dict(tmpl, call_id=f"bench-ingest-{time.time_ns()}-{i}", device_id=f"dev-{i % DEVICES:04d}",
                 started_at=(END - timedelta(minutes=i)).isoformat().replace("+00:00", "Z"))
        summaries.append(CallSummary.model_validate(d))
    t0 = time.perf_counter()
    for b in range(0, len(summaries), 200):
        store.upsert_calls(summaries[b:b + 200])
    rate = len(summaries) / (time.perf_counter() - t0)
    # a new agent takes over the last desk 180 days back (no timed case uses agent-0499 / dev-0499)
    q.upsert_agent("agent-bench", "Bench Agent", "team-49")
    t0 = time.perf_counter()
    q.assign(f"dev-{DEVICES - 1:04d}", "agent-bench", END - timedelta(days=180))
    assign_ms = (time.perf_counter() - t0) * 1000.0
    return rate, assign_ms


def _csv_side_by_side(q, cq) -> list[list]:
    """Agent-day CSV body for ``cq`` built three ways: the previous export (unrounded tuples
    through the csv module's writer, floats as repr, up to 17 digits), the rounded tuples
    formatted in Python (the fallback path) and SQLite's lines (the served path). Rows
    [variant, CPU ms best of 5 alternating, speed-up, MB]."""
    import csv
    import io

    from pacelight_host.api.app import figures_csv
    from pacelight_host.api.queries import FIGURES

    def repr_unrounded() -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(FIGURES)
        w.writerows(q.aggregate_rows("agent", "day", cq, rounded=False))
        return buf.getvalue()

    variants = {"unrounded figures, csv writer (repr, up to 17 digits) — the previous export": repr_unrounded,
                "rounded figures as tuples, one %-format per row (the fallback path)":
                    lambda: figures_csv(q.aggregate_rows("agent", "day", cq)),
                "rounded figures, lines written by SQLite printf (served)":
                    lambda: "\n".join([",".join(FIGURES), *q.aggregate_csv_lines("agent", "day", cq), ""])}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    size = {k: len(fn().encode()) for k, fn in variants.items()}
    for _ in range(5):
        for k, fn in variants.items():
            c0 = time.process_time()
            fn()
            cpu[k].append((time.process_time() - c0) * 1000.0)
    base = min(cpu[next(iter(variants))])
    return [[k, round(min(v), 1), f"{base / min(v):.1f}×", f"{size[k] / 1e6:.2f}"] for k, v in cpu.items()]


def _time(fn, runs: int = 5) -> tuple[float, float, float]:
    """(median wall ms, max wall ms, median CPU ms of this process — all its threads, so the
    HTTP server thread too; independent of the other jobs sharing the machine)."""
    fn()                                   # warm
    ts, cpu = [], []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    return statistics.median(ts), max(ts), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, help="database file (reused when it exists)")
    ap.add_argument("--no-report", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args(argv)

    from pacelight_host.api.queries import CallQuery, Queries
    from pacelight_host.store import Store

    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory(prefix="pacelight-bench-")
        path = Path(tmp.name) / "bench.sqlite"
    else:
        path = args.db
    gen_s = None
    if not path.exists():
        gen_s = generate(path, args.calls)
        print(f"generated {args.calls} calls in {gen_s:.1f} s")
    store = Store.open(f"sqlite:///{path}")
    from pacelight_host.api.schema import ensure_schema, rollup_state

    had_rollup = _has_rollup(path)
    t0 = time.perf_counter()
    ensure_schema(store)                   # dashboard tables, indexes, triggers, facts backfill
    schema_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    q = Queries(store)                     # + the rollup: built from the calls when missing/stale
    rollup_s = time.perf_counter() - t0
    if rollup_state(store) is None:
        raise SystemExit("the dashboard rollup was not built")
    rollup_rows = store._execute("SELECT COUNT(*) FROM call_rollup").fetchone()[0]
    month_rows = store._execute("SELECT COUNT(*) FROM call_rollup_month").fetchone()[0]
    seed_registry(store)
    n = store.count_calls()
    d30 = CallQuery(since=END - timedelta(days=30), until=END)
    d90 = END - timedelta(days=90)
    m6 = END - timedelta(days=183)
    cases = [
        ("calls page: last 30 days, page 1 (count + 50 rows)", lambda: q.list_calls(d30)),
        ("calls page: last 30 days, page 20", lambda: q.list_calls(CallQuery(since=d30.since, until=END, offset=950))),
        ("calls: one agent, 90 days, page 3", lambda: q.list_calls(CallQuery(agent_id="agent-0042", since=d90,
                                                                             until=END, offset=100))),
        ("calls: one team, 30 days", lambda: q.list_calls(CallQuery(team_id="team-07", since=d30.since, until=END))),
        ("calls: one device, all time", lambda: q.list_calls(CallQuery(device_id="dev-0099"))),
        ("calls: all time, no filter (count 1M + page)", lambda: q.list_calls(CallQuery())),
        ("overview: totals, last 30 days", lambda: q.aggregate("all", None, d30)),
        ("overview: per team, last 30 days", lambda: q.aggregate("team", None, d30)),
        ("overview: per day, last 30 days", lambda: q.aggregate("all", "day", d30)),
        ("agents page: per agent, last 30 days", lambda: q.aggregate("agent", None, d30)),
        ("agent page: per month, 6 months", lambda: q.aggregate("agent", "month", CallQuery(agent_id="agent-0042",
                                                                                            since=m6, until=END))),
        ("agent page: pace distribution, 6 months", lambda: q.distribution(
            "agent_pace_syl_s", CallQuery(agent_id="agent-0042", since=m6, until=END), [2 + 0.5 * i for i in range(13)])),
        ("team page: per month, 6 months", lambda: q.aggregate("team", "month", CallQuery(team_id="team-07", since=m6,
                                                                                          until=END))),
        ("team: per week, one year", lambda: q.aggregate("team", "week", CallQuery(team_id="team-07"))),
        ("fleet: devices", lambda: q.devices()),
        ("agents per day, last 30 days (dicts, as the JSON API serves them)", lambda: q.aggregate("agent", "day", d30)),
        ("per team per week, 30 days from 07:30 to 16:00 (partial edge days)", lambda: q.aggregate(
            "team", "week", CallQuery(since=d30.since + timedelta(hours=7.5), until=END - timedelta(hours=8)))),
        ("one device per day, one year", lambda: q.aggregate("all", "day", CallQuery(device_id="dev-0099"))),
        ("per team, all time", lambda: q.aggregate("team", None, CallQuery())),
    ]
    from fastapi.testclient import TestClient
    from pacelight_host.api import create_app
    from pacelight_host.api.auth import Users

    users = Users(store)
    if not users.authenticate("bench", "bench-password"):
        try:
            users.add("bench", "supervisor", "bench-password")
        except Exception:
            pass
    client = TestClient(create_app(store))
    client.post("/api/login", json={"username": "bench", "password": "bench-password"})
    cases += [
        ("HTTP GET /api/calls?since=…30 days", lambda: client.get("/api/calls", params={"since": "2026-10-24"})),
        ("HTTP GET /api/aggregates/teams?period=week (30 days)",
         lambda: client.get("/api/aggregates/teams", params={"since": "2026-10-24", "period": "week"})),
        ("HTTP GET /api/aggregates/agents (30 days)",
         lambda: client.get("/api/aggregates/agents", params={"since": "2026-10-24"})),
        ("HTTP GET /api/aggregates/all?period=day (one year)",
         lambda: client.get("/api/aggregates/all", params={"period": "day"})),
        ("HTTP GET /api/aggregates/agents?period=month&format=csv (one year)",
         lambda: client.get("/api/aggregates/agents", params={"period": "month", "format": "csv"})),
        ("HTTP GET /api/aggregates/agents?period=day&format=csv (30 days)",
         lambda: client.get("/api/aggregates/agents", params={"period": "day", "since": "2026-10-24",
                                                              "until": "2026-11-22", "format": "csv"})),
        ("HTTP GET /agents (page, 30 days)", lambda: client.get("/agents")),
        ("HTTP GET /teams/team-07 (page, 6 months)", lambda: client.get("/teams/team-07")),
        ("HTTP GET /agents/agent-0042 (page)", lambda: client.get("/agents/agent-0042")),
        ("HTTP GET / (overview page)", lambda: client.get("/", params={"since": "2026-10-24", "until": "2026-11-22"})),
    ]
    for path_ in ("/", "/agents", "/teams/team-07", "/api/aggregates/all"):
        r = client.get(path_)
        if r.status_code != 200 or "/login" in str(r.url):
            raise SystemExit(f"benchmark request {path_} failed: {r.status_code} {r.url}")
    csv_sizes = {k: len(client.get("/api/aggregates/agents", params=p).content) for k, p in (
        ("month", {"period": "month", "format": "csv"}),
        ("day", {"period": "day", "since": "2026-10-24", "until": "2026-11-22", "format": "csv"}))}
    csv_cmp = _csv_side_by_side(q, CallQuery(since=datetime(2026, 10, 24, tzinfo=UTC),
                                             until=datetime(2026, 11, 23, tzinfo=UTC)))
    rows, ok = [], True
    load_before = os.getloadavg()[0]
    for name, fn in cases:
        med, mx, cpu = _time(fn)
        good = med <= TARGET_MS
        ok &= good
        rows.append([name, round(med, 1), round(mx, 1), round(cpu, 1), "yes" if good else "NO"])
        print(f"{med:8.1f} ms (max {mx:7.1f}, CPU {cpu:6.1f})  {'ok ' if good else 'SLOW'} {name}")

    # the rollup against the row-level reference on the same 1M calls
    ref_rows, identical = [], True
    for name, agg_args in (("totals, last 30 days", ("all", None, d30)),
                       ("per team, last 30 days", ("team", None, d30)),
                       ("per agent per day, last 30 days", ("agent", "day", d30)),
                       ("per team per week, partial edge days", ("team", "week", CallQuery(
                           since=d30.since + timedelta(hours=7.5), until=END - timedelta(hours=8)))),
                       ("one team per week, one year", ("team", "week", CallQuery(team_id="team-07")))):
        fast_ms, ref_ms = [], []
        for _ in range(3):                 # alternating, best of 3 each (a shared machine)
            t0 = time.perf_counter()
            fast = q.aggregate(*agg_args)
            t1 = time.perf_counter()
            q.aggregate(*agg_args, from_rows=True)
            t2 = time.perf_counter()
            fast_ms.append((t1 - t0) * 1000)
            ref_ms.append((t2 - t1) * 1000)
        # identical: the unrounded figures (full double precision, before the documented rounding)
        same = _same(q.aggregate(*agg_args, rounded=False), q.aggregate(*agg_args, from_rows=True, rounded=False))
        identical &= same
        ref_rows.append([name, len(fast), round(min(fast_ms), 1), round(min(ref_ms), 1), "yes" if same else "NO"])
        print(f"reference {name}: rollup {min(fast_ms):.1f} ms, rows {min(ref_ms):.1f} ms, same={same}")
    ok &= identical

    # write-side cost: ingest through the store (trigger keeps the rollup) and a desk change
    ingest_rate, assign_ms = _write_costs(store, q)
    print(f"ingest with dashboard triggers: {ingest_rate:.0f} calls/s; reassign 180 days: {assign_ms:.0f} ms")
    ok &= _same(q.aggregate("agent", "month", CallQuery(since=END - timedelta(days=200)), rounded=False),
                q.aggregate("agent", "month", CallQuery(since=END - timedelta(days=200)), from_rows=True,
                            rounded=False))
    store.close()
    if not args.no_report:
        from benchmarks.report import table, write_section

        gen = f"bulk insert {gen_s:.0f} s, " if gen_s else ""
        slow = [r[0] for r in rows if r[4] != "yes"]
        slow_note = ("Over target: " + "; ".join(slow) + "." if slow else "Every query met the target.")
        built = (f"rollups built from the calls at start-up in {rollup_s:.1f} s ({rollup_rows:,} day × agent rows, "
                 f"{month_rows:,} month × agent rows)" if not had_rollup
                 else f"rollup already current (start-up check {rollup_s:.2f} s, {rollup_rows:,} day × agent rows)")
        body = (f"{n:,} calls (one year, {DEVICES} devices/agents, {TEAMS} teams) in SQLite (WAL), {gen}"
                f"dashboard schema/indexes on an existing database {schema_s:.1f} s, {built}. "
                f"Median of 5 warm runs of wall time (target ≤ {TARGET_MS:.0f} ms); load average during the run "
                f"{load_before:.1f} → {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the machine is "
                "shared with other jobs, so wall time includes waiting for a core; the CPU column is this "
                "process's CPU time per request, the HTTP server thread included).\n\n"
                + table(["query", "median ms", "max ms", "median CPU ms", "≤ target (median ms)"], rows)
                + "\n\nWhole UTC months of a range are summed from `call_rollup_month`, the remaining whole "
                  "days from `call_rollup` (day × agent: sums, counts and maxima of every aggregated "
                  "figure, kept by the insert trigger in the same transaction, recomputed for the agents and "
                  "days/months concerned on a desk reassignment or a deleted call); partial first/last days and "
                  "device-filtered ranges are read from the call rows. Fleet-wide daily/weekly series come from "
                  "`call_rollup_fleet` (per day). When one rollup table answers a range at the requested period "
                  "(per agent per day, per agent per month over whole months, per team or overall at the table's "
                  "unit or for the whole range) the grouping and the final figures are computed in SQL — per agent "
                  "each rollup row already is one result row, no GROUP BY — and returned as tuples; the aggregates "
                  "CSV export of such a range is written by SQLite itself (one printf per row, no Python object "
                  "per figure); other ranges format the tuples in Python (one %-format per row), to the same text. "
                  "Every figure is rounded to its documented precision (`PRECISION` in "
                  "`pacelight_host/api/queries.py`: ratios and shares 4 decimals, syl/s and per-call rates 3, hours 3, "
                  "seconds 1, counts exact; half up, the same double arithmetic in SQL and Python), so JSON and CSV "
                  "carry the same short numbers; the CSV writes each with exactly its figure's decimals. The CSV "
                  f"downloads are {csv_sizes['month'] / 1e6:.1f} MB (agent-months, one year, ~6,500 rows) and "
                  f"{csv_sizes['day'] / 1e6:.1f} MB (agent-days, 30 days, ~15,000 rows × 25 columns). "
                  "The agent-day CSV body (30 days) built three ways in this run (CPU ms, best of 5 alternating; "
                  "query included):\n\n"
                  + table(["CSV body", "CPU ms", "speed-up", "MB"], csv_cmp)
                  + "\n\n" + slow_note + " Rollup against the row-level "
                  "reference (`aggregate(..., from_rows=True)`) on the same data (best of 3 runs each, alternating):\n\n"
                  + table(["aggregate", "result rows", "rollup ms", "row-level ms", "identical"], ref_rows)
                  + "\n\n(timings: the served, rounded figures; identical: the unrounded figures "
                  "(`rounded=False`, full double precision) have the same keys/periods and counts and floats equal "
                  "to 1e-9 relative — sums in a different order. The tests also compare the rounded figures, to one "
                  "unit of their last decimal, and SQLite's CSV lines with Python's text.)\n\n"
                  f"Write side on the 1M-call database: ingest through `Store.write_batch` (batches of 200, "
                  f"SQLite synchronous=FULL, all dashboard triggers incl. the rollup) {ingest_rate:,.0f} calls/s; "
                  f"seating a new agent at a desk 180 days in the past (re-attribution of ~900 calls + day/month rollup "
                  f"recompute of the two agents concerned) "
                  f"{assign_ms:.0f} ms.\n\n"
                  "Indexes used: the store's `calls (started_at)`, `(agent_id, started_at)`, "
                  "`(device_id, started_at)`; the dashboard adds `calls (started_at, agent_id)`, "
                  "`agents (team_id)`, `assignments (device_id, valid_from)`, `(agent_id, valid_from)`, "
                  "`call_rollup (day, agent_id)` (primary key; SQLite `WITHOUT ROWID`, so a date range is one "
                  "contiguous read), `call_rollup (agent_id, day)`, the same two on `call_rollup_month` (month), "
                  "`call_rollup_fleet (day)`; `call_facts` is keyed by `call_id`.")
        write_section("api_queries", "Dashboard API queries (1M calls)", body)
    if tmp is not None:
        tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
