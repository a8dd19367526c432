"""The rollups (day and month × agent, fleet-wide per day) give exactly the aggregates
of the call rows (SQLite and PostgreSQL): after ingest, a desk reassignment in the past
(mid-day), a deleted call, calls stored before the dashboard existed (start-up rebuild) and a
changed pace target. Compared unrounded (1e-9 relative: sums in another order) and as served,
rounded to the documented precision, where the SQL and Python rounding are bit-identical."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from _api_helpers import seed_registry
from conftest import build_summary, utc

pytest.importorskip("fastapi")

from pacelight_host.api.app import figures_csv  # noqa: E402
from pacelight_host.api.queries import PRECISION, CallQuery, Queries, round_figure, round_sql  # noqa: E402
from pacelight_host.api.schema import ROLLUP_VERSION, rollup_state  # noqa: E402

T0 = datetime(2026, 9, 18, tzinfo=UTC)          # calls over 35 days: Sep 18 – Oct 23
DEVICES = ("dev-1", "dev-2", "dev-3", "dev-4")            # dev-4: nobody seated (agent NULL)


def _calls(n: int, seed: int, prefix: str) -> list:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        start = T0 + timedelta(seconds=rnd.randrange(0, 35 * 86400))
        a, c = rnd.uniform(0, 120), rnd.uniform(0, 120)
        lo, hi = rnd.uniform(0, 0.5), rnd.uniform(0, 0.5)
        tone = ({"low": lo, "neutral": 1 - lo - hi, "high": hi, "mean_score": rnd.random()} if rnd.random() > 0.1
                else {"low": None, "neutral": None, "high": None, "mean_score": None})
        cues = [{"t": float(k), "kind": rnd.choice(("overtalk", "monologue", "pace", "energy")),
                 "state": rnd.choice(("on", "off"))} for k in range(rnd.randrange(0, 5))]
        out.append(build_summary(
            f"{prefix}-{i:04d}", rnd.choice(DEVICES), started_at=start.isoformat().replace("+00:00", "Z"),
            duration_s=a + c + 30.0,
            talk={"agent_s": a, "customer_s": c, "silence_s": 30.0, "overlap_s": rnd.uniform(0, 5),
                  "agent_ratio": a / (a + c) if a + c else None},
            overtalk={"events": rnd.randrange(6), "agent_interruptions": rnd.randrange(3),
                      "customer_interruptions": rnd.randrange(3), "agent_backchannels": rnd.randrange(5),
                      "customer_backchannels": rnd.randrange(5)},
            pace={"agent_syl_s": None if rnd.random() < 0.1 else rnd.uniform(3.0, 8.0), "customer_syl_s": 4.0},
            monologue={"agent_longest_s": rnd.uniform(0, 90), "customer_longest_s": rnd.uniform(0, 60)},
            tone={"agent": tone, "customer": {"low": 0.1, "neutral": 0.6, "high": 0.3, "mean_score": 0.5}},
            cues=cues))
    return out


def _same(a: list[dict], b: list[dict], what: str, *, rounded: bool = False) -> None:
    """Same keys, periods and counts; floats equal to 1e-9 (unrounded: sums in another order differ
    in the last bits) or, ``rounded``, to one unit of the figure's last decimal (such a last-bit
    difference may fall on either side of a rounding boundary)."""
    assert [(r["key"], r["period"]) for r in a] == [(r["key"], r["period"]) for r in b], what
    for x, y in zip(a, b, strict=True):
        for k, u in x.items():
            v = y[k]
            if isinstance(u, float) or isinstance(v, float):
                tol = 1.000001 * 10.0 ** -PRECISION[k] if rounded else 1e-9
                assert u is not None and v is not None and math.isclose(u, v, rel_tol=1e-9, abs_tol=tol), \
                    (what, k, u, v)
            else:
                assert u == v, (what, k, u, v)


_RANGES = (
    (None, None),
    (utc("2026-10-03T00:00:00Z"), utc("2026-10-17T00:00:00Z")),      # whole days
    (utc("2026-10-03T07:30:00Z"), utc("2026-10-17T13:15:00Z")),      # partial first and last day
    (utc("2026-10-05T08:00:00Z"), utc("2026-10-05T18:00:00Z")),      # inside one day
    (utc("2026-10-09T12:00:00Z"), None),
    (None, utc("2026-10-12T06:00:00Z")),
    (utc("2026-09-25T06:00:00Z"), utc("2026-11-01T00:00:00Z")),      # days, a whole month, edge
    (utc("2026-09-01T00:00:00Z"), utc("2026-10-09T09:00:00Z")),      # a whole month, days, edge
)


def _check_all(q: Queries, label: str) -> int:
    checked = csv_lines = empty_fields = 0
    for since, until in _RANGES:
        for filt in ({}, {"agent_id": "ann"}, {"team_id": "blue"}, {"device_id": "dev-1"}):
            cq = CallQuery(since=since, until=until, **filt)
            for by in ("all", "team", "agent"):
                for period in (None, "day", "week", "month"):
                    got = q.aggregate(by, period, cq, rounded=False)
                    _same(got, q.aggregate(by, period, cq, from_rows=True, rounded=False), f"{label} {by} {period} {cq}")
                    _same(q.aggregate(by, period, cq), q.aggregate(by, period, cq, from_rows=True),
                          f"rounded {label} {by} {period} {cq}", rounded=True)
                    lines = q.aggregate_csv_lines(by, period, cq)       # SQLite's CSV text: None elsewhere
                    if lines is not None:
                        csv_lines += 1
                        empty_fields += any(",," in ln for ln in lines)    # a missing figure, e.g. no pace
                        assert lines == figures_csv(q.aggregate_rows(by, period, cq)).splitlines()[1:], \
                            f"csv {label} {by} {period} {cq}"
                    checked += len(got)
    assert (csv_lines > 0 and empty_fields > 0) == (q.store.dialect.name == "sqlite")
    return checked


def _rounding_twins(store) -> None:
    """The SQL rounding gives bit-identical values to the Python one, ties and near-ties included."""
    values = [0.0, 1e-9, 0.03125, 0.0625, 0.00005, 0.00004999999, 0.99995, 2.675, 1.0005, 1 / 3, 2 / 3, 0.5,
              4.8, 4.1 / 4.8, 5.76, 12.25, 7199.95, 123456.789, 3600.0 / 7.0]
    for d in sorted({p for p in PRECISION.values() if p is not None}):
        got = [store._execute(f"SELECT {round_sql('?', d, store.dialect.name)}", (x,)).fetchone()[0] for x in values]
        assert got == [round_figure(x, d) for x in values], d
    assert round_figure(0.03125, 4) == 0.0313 and round_figure(0.0625, 3) == 0.063     # half up
    assert round_figure(2 / 3, 4) == 0.6667 and round_figure(None, 4) is None and round_figure(7, None) == 7


def _exercise(store) -> None:
    _rounding_twins(store)
    store.upsert_calls(_calls(60, 1, "pre"))                 # stored before the dashboard existed
    q = Queries(store)                                       # start-up: rollup built from these
    assert rollup_state(store) == (ROLLUP_VERSION, q.pace_fast_syl_s)
    assert store._execute("SELECT SUM(calls) FROM call_rollup").fetchone()[0] == 60
    assert store._execute("SELECT SUM(calls) FROM call_rollup_month").fetchone()[0] == 60
    assert store._execute("SELECT SUM(calls) FROM call_rollup_fleet").fetchone()[0] == 60
    seed_registry(q)                                         # ann dev-1, bob dev-2, cid dev-3 from Sep 1
    store.upsert_calls(_calls(240, 2, "live"))
    store.upsert_calls(_calls(20, 2, "live"))                # duplicates: stored (and counted) once
    assert _check_all(q, "ingest") > 0
    # mid-day reassignments in the past: ann moves to dev-3 at noon on Oct 8 (cid leaves), dev-2
    # is vacated on Sep 25 14:00 (day and month rollups of two months recomputed)
    q.assign("dev-3", "ann", utc("2026-10-08T12:00:00Z"))
    q.assign("dev-2", None, utc("2026-09-25T14:00:00Z"))
    store.upsert_calls(_calls(40, 3, "late"))
    per_agent = {r["key"]: r["calls"] for r in q.aggregate("agent", None, CallQuery())}
    assert per_agent.get(None, 0) > 0 and per_agent["ann"] > 0
    _check_all(q, "reassigned")
    victim = q.list_calls(CallQuery(device_id="dev-3", limit=1))[1][0]["call_id"]
    with store.transaction() as conn:
        conn.execute(store.dialect.sql("DELETE FROM calls WHERE call_id = ?"), (victim,))
    _check_all(q, "deleted")
    total = q.aggregate("all", None, CallQuery())[0]["calls"]
    assert total == store.count_calls() == 60 + 240 + 40 - 1

    # another pace target: the newest Queries owns the rollup, an older one falls back to the rows
    q2 = Queries(store, pace_target_syl_s=4.0)
    assert rollup_state(store)[1] == pytest.approx(4.8)
    for qq, label in ((q2, "new target"), (q, "old target")):
        _same(qq.aggregate("agent", "week", CallQuery(), rounded=False),
              qq.aggregate("agent", "week", CallQuery(), from_rows=True, rounded=False), label)


def test_rollup_matches_rows_sqlite(sqlite_store):
    _exercise(sqlite_store)


def test_rollup_of_an_older_format_is_replaced_and_rebuilt(sqlite_store):
    # format 3 kept day × device × agent rows: dropped at start-up, re-created per agent, rebuilt
    sqlite_store.upsert_calls(_calls(50, 4, "old"))
    with sqlite_store.transaction() as conn:
        conn.execute("CREATE TABLE call_rollup (day TEXT NOT NULL, device_id TEXT NOT NULL, agent_id TEXT NOT NULL, "
                     "calls INTEGER NOT NULL, PRIMARY KEY (day, device_id, agent_id))")
        conn.execute("CREATE TABLE dash_rollup_meta (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
                     "pace_fast_syl_s REAL NOT NULL)")
        conn.execute("INSERT INTO dash_rollup_meta VALUES (1, 3, 5.76)")
        conn.execute("INSERT INTO call_rollup VALUES ('2026-10-01', 'dev-1', '', 999)")
    q = Queries(sqlite_store)
    assert rollup_state(sqlite_store) == (ROLLUP_VERSION, q.pace_fast_syl_s)
    cols = [r[1] for r in sqlite_store._execute("PRAGMA table_info(call_rollup)").fetchall()]
    assert "device_id" not in cols and cols[:2] == ["day", "agent_id"]
    assert sqlite_store._execute("SELECT SUM(calls) FROM call_rollup").fetchone()[0] == 50
    seed_registry(q)
    sqlite_store.upsert_calls(_calls(30, 5, "new"))
    assert _check_all(q, "migrated") > 0


def test_rollup_matches_rows_postgres(postgres_url):
    import psycopg
    from pacelight_host.store import Store

    db = "pacelight_rollup_test"                    # its own database in the shared session cluster
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute(f"CREATE DATABASE {db}")
    store = Store.open(postgres_url.rsplit("/", 1)[0] + f"/{db}")
    try:
        _exercise(store)
    finally:
        store.close()
