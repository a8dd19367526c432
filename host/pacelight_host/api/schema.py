"""Tables the REST API and dashboard add beside the aggregator's store (additive only).

Nothing here changes how the aggregator stores a call. Added:

* ``agents``, ``teams`` — who is who; an agent belongs to at most one team (current membership).
* ``assignments`` — which agent sits at which device, over time (``valid_from`` inclusive,
  ``valid_to`` exclusive, NULL = still assigned). A call belongs to the agent assigned to its
  device at its ``started_at``.
* ``call_facts`` — per call: the attributed ``agent_id`` is written into the store's existing
  nullable ``calls.agent_id`` column, and the figures the store does not keep as columns
  (backchannels, customer monologue, tone low/neutral, cue counts per kind) live here, keyed
  by ``call_id``. Both are filled by a database trigger on every insert into ``calls`` (so
  ingest stays untouched), and by :func:`backfill` for calls stored before the trigger existed.
* ``call_rollup`` — per UTC day × attributed agent ('' = nobody seated), the sums, counts and
  maxima of every figure the aggregates need (:data:`ROLLUP_MEASURES`). Kept current in the same
  transaction as each call insert (the insert trigger), recomputed for the affected agents and
  days when a desk assignment changes (:func:`reattribute`) or a call is deleted (delete
  trigger), and rebuilt at start-up when it does not match ``calls`` (:func:`ensure_rollup`).
  Range aggregates then sum a few thousand rollup rows instead of reading every call; one row
  per (agent, day) means per-agent daily figures need no grouping at all. Device-filtered
  aggregates read the call rows (one device's calls, through the ``(device_id, started_at)`` index).
* ``call_rollup_month`` — the same per UTC month × agent, for the whole months of long ranges
  (totals or monthly figures over a year read ~6,000 rows instead of ~180,000). Kept by the
  same trigger, recomputed from the day rows wherever those are.
* ``call_rollup_fleet`` — per UTC day over all devices and agents (fleet-wide daily/weekly series
  over long ranges; a reassignment does not change it, a deleted call re-sums its day).
* ``dash_rollup_meta`` — one row: the rollup's format version and the pace threshold of its
  "fast calls" count.
* ``device_models`` — per device the tone model and pipeline version of its newest call.
* ``dash_users``, ``dash_sessions`` — dashboard logins (salted scrypt hashes) and sessions
  (SHA-256 of the random cookie token, with expiry).

All timestamps are the store's fixed-width ISO 8601 UTC text.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date, timedelta

from pacelight_host.store import SQLITE, Store

log = logging.getLogger(__name__)

FACT_COLUMNS: tuple[str, ...] = (
    "agent_backchannels", "customer_backchannels", "customer_longest_monologue_s",
    "agent_tone_low", "agent_tone_neutral", "customer_tone_low", "customer_tone_neutral",
    "cues_overtalk", "cues_monologue", "cues_pace", "cues_energy",
)

# SQLite expressions over NEW.summary (JSON text) for FACT_COLUMNS, in order.
_SQLITE_FACTS = (
    "json_extract(NEW.summary, '$.overtalk.agent_backchannels')",
    "json_extract(NEW.summary, '$.overtalk.customer_backchannels')",
    "json_extract(NEW.summary, '$.monologue.customer_longest_s')",
    "json_extract(NEW.summary, '$.tone.agent.low')",
    "json_extract(NEW.summary, '$.tone.agent.neutral')",
    "json_extract(NEW.summary, '$.tone.customer.low')",
    "json_extract(NEW.summary, '$.tone.customer.neutral')",
    *(f"(SELECT COUNT(*) FROM json_each(NEW.summary, '$.cues') WHERE json_extract(value, '$.kind') = '{k}' "
      "AND json_extract(value, '$.state') = 'on')" for k in ("overtalk", "monologue", "pace", "energy")),
)
_PG_FACTS = (
    "(j->'overtalk'->>'agent_backchannels')::int",
    "(j->'overtalk'->>'customer_backchannels')::int",
    "(j->'monologue'->>'customer_longest_s')::float8",
    "(j->'tone'->'agent'->>'low')::float8",
    "(j->'tone'->'agent'->>'neutral')::float8",
    "(j->'tone'->'customer'->>'low')::float8",
    "(j->'tone'->'customer'->>'neutral')::float8",
    *(f"(SELECT COUNT(*) FROM jsonb_array_elements(j->'cues') c WHERE c->>'kind' = '{k}' "
      "AND c->>'state' = 'on')" for k in ("overtalk", "monologue", "pace", "energy")),
)

_AGENT_AT = ("(SELECT a.agent_id FROM assignments a WHERE a.device_id = {dev} AND a.valid_from <= {ts} "
             "AND (a.valid_to IS NULL OR a.valid_to > {ts}) ORDER BY a.valid_from DESC LIMIT 1)")


def agent_at_sql(dev: str, ts: str) -> str:
    """SQL expression: the agent assigned to device ``dev`` at time ``ts`` (or NULL)."""
    return _AGENT_AT.format(dev=dev, ts=ts)


# The measures every aggregate is built from: (name, SQL aggregate over calls ``c`` LEFT JOIN
# call_facts ``f``, integer?). ``{fast}`` is the "fast call" pace threshold (syl/s). The row-level
# query and the rollup use these same expressions; the rollup keeps them per day × agent
# (sums and counts merge by addition, ``monologue_max`` by MAX).
ROLLUP_MEASURES: tuple[tuple[str, str, bool], ...] = (
    ("calls", "COUNT(*)", True),
    ("duration_s", "SUM(c.duration_s)", False),
    ("agent_talk_s", "SUM(c.agent_talk_s)", False),
    ("customer_talk_s", "SUM(c.customer_talk_s)", False),
    ("overlap_s", "SUM(c.overlap_s)", False),
    ("overtalk_events", "SUM(c.overtalk_events)", True),
    ("agent_interruptions", "SUM(c.agent_interruptions)", True),
    ("customer_interruptions", "SUM(c.customer_interruptions)", True),
    ("agent_backchannels", "SUM(f.agent_backchannels)", True),
    ("customer_backchannels", "SUM(f.customer_backchannels)", True),
    ("pace_sum", "SUM(c.agent_pace_syl_s)", False),
    ("pace_n", "COUNT(c.agent_pace_syl_s)", True),
    ("pace_fast_calls", "SUM(CASE WHEN c.agent_pace_syl_s > {fast} THEN 1 ELSE 0 END)", True),
    ("monologue_sum", "SUM(c.agent_longest_monologue_s)", False),
    ("monologue_max", "MAX(c.agent_longest_monologue_s)", False),
    ("tone_low_sum", "SUM(f.agent_tone_low)", False),
    ("tone_neutral_sum", "SUM(f.agent_tone_neutral)", False),
    ("tone_high_sum", "SUM(c.agent_tone_high)", False),
    ("tone_n", "COUNT(c.agent_tone_high)", True),
    ("cues", "SUM(c.cue_count)", True),
    ("cues_overtalk", "SUM(f.cues_overtalk)", True),
    ("cues_monologue", "SUM(f.cues_monologue)", True),
    ("cues_pace", "SUM(f.cues_pace)", True),
    ("cues_energy", "SUM(f.cues_energy)", True),
)
ROLLUP_MAX = frozenset({"monologue_max"})
ROLLUP_VERSION = 4          # 4: keyed by (day | month, agent) — no device dimension
_META_FAST = "(SELECT pace_fast_syl_s FROM dash_rollup_meta WHERE id = 1)"
# The rollup's day: the first 10 characters of the store's fixed-width ISO text (UTC date).
DAY_SQL = "substr(c.started_at, 1, 10)"


def measures_sql(fast: str) -> str:
    """The SELECT list of every measure over ``calls c LEFT JOIN call_facts f`` (NULL when no
    row has a value, like plain SQL aggregates)."""
    return ", ".join(f"{expr.format(fast=fast)} AS {name}" for name, expr, _ in ROLLUP_MEASURES)


def _merge_set(table: str) -> str:
    """ON CONFLICT … DO UPDATE SET merging a new rollup row into ``table``'s existing one."""
    return ", ".join(
        f"{n} = CASE WHEN excluded.{n} IS NULL THEN {table}.{n} WHEN {table}.{n} IS NULL "
        f"OR excluded.{n} > {table}.{n} THEN excluded.{n} ELSE {table}.{n} END" if n in ROLLUP_MAX
        else f"{n} = {table}.{n} + excluded.{n}" for n, _, _ in ROLLUP_MEASURES)


_NAMES = ", ".join(n for n, _, _ in ROLLUP_MEASURES)


def _rollup_select(where: str, table: str = "call_rollup") -> str:
    """INSERT … SELECT of rollup rows (``call_rollup``: per day, ``call_rollup_month``: per month,
    ``call_rollup_fleet``: per day over all devices) for the calls matching ``where``, merging
    into existing rows."""
    col, width = ("month", 7) if table == "call_rollup_month" else ("day", 10)
    key = f"substr(c.started_at, 1, {width})"
    fleet = table == "call_rollup_fleet"
    vals = ", ".join(expr.format(fast=_META_FAST) if n in ROLLUP_MAX
                     else f"COALESCE({expr.format(fast=_META_FAST)}, 0)" for n, expr, _ in ROLLUP_MEASURES)
    cols, sel = (col, key) if fleet else (f"{col}, agent_id", f"{key}, COALESCE(c.agent_id, '')")
    return (f"INSERT INTO {table} ({cols}, {_NAMES}) SELECT {sel}, {vals} "
            f"FROM calls c LEFT JOIN call_facts f ON f.call_id = c.call_id WHERE {where} "
            f"GROUP BY {sel} ON CONFLICT ({cols}) DO UPDATE SET {_merge_set(table)}")


def _fleet_from_days(where: str) -> str:
    """INSERT … SELECT of fleet-wide day rows summed from the day rows matching ``where`` (alias r)."""
    vals = ", ".join(f"MAX(r.{n})" if n in ROLLUP_MAX else f"SUM(r.{n})" for n, _, _ in ROLLUP_MEASURES)
    return (f"INSERT INTO call_rollup_fleet (day, {_NAMES}) SELECT r.day, {vals} FROM call_rollup r "
            f"WHERE {where} GROUP BY r.day ON CONFLICT (day) DO UPDATE SET {_merge_set('call_rollup_fleet')}")


def _months_from_days(where: str) -> str:
    """INSERT … SELECT of month rollup rows summed from the day rows matching ``where`` (alias r)."""
    vals = ", ".join(f"MAX(r.{n})" if n in ROLLUP_MAX else f"SUM(r.{n})" for n, _, _ in ROLLUP_MEASURES)
    return (f"INSERT INTO call_rollup_month (month, agent_id, {_NAMES}) "
            f"SELECT substr(r.day, 1, 7), r.agent_id, {vals} FROM call_rollup r WHERE {where} "
            "GROUP BY substr(r.day, 1, 7), r.agent_id "
            f"ON CONFLICT (month, agent_id) DO UPDATE SET {_merge_set('call_rollup_month')}")


def _rollup_group_refresh(old: str) -> list[str]:
    """Statements recomputing the day and month rollup rows of deleted call ``old`` (trigger alias);
    the day's calls are found through the ``started_at`` index."""
    day, month = f"substr({old}.started_at, 1, 10)", f"substr({old}.started_at, 1, 7)"
    agent = f"COALESCE({old}.agent_id, '')"
    return [f"DELETE FROM call_rollup WHERE day = {day} AND agent_id = {agent}",
            _rollup_select(f"c.started_at >= {day} AND c.started_at < {day} || 'T99' "
                           f"AND COALESCE(c.agent_id, '') = {agent}"),
            f"DELETE FROM call_rollup_month WHERE month = {month} AND agent_id = {agent}",
            _months_from_days(f"r.agent_id = {agent} AND r.day >= {month} AND r.day < {month} || '-99'"),
            f"DELETE FROM call_rollup_fleet WHERE day = {day}",
            _fleet_from_days(f"r.day = {day}")]


def _tables(store: Store) -> list[str]:
    d = store.dialect
    real = d.real
    facts = ",\n    ".join(f"{c} {real if c.endswith('_s') or 'tone' in c else 'INTEGER'}" for c in FACT_COLUMNS)
    rollup = ",\n    ".join(f"{n} {'INTEGER' if is_int else real}" + ("" if n in ROLLUP_MAX else " NOT NULL")
                             for n, _, is_int in ROLLUP_MEASURES)
    # SQLite: the rollups are clustered on their key (a date range is one contiguous read)
    clustered = " WITHOUT ROWID" if d is SQLITE else ""
    return [
        "CREATE TABLE IF NOT EXISTS teams (team_id TEXT PRIMARY KEY, name TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS agents (agent_id TEXT PRIMARY KEY, name TEXT NOT NULL, team_id TEXT)",
        "CREATE INDEX IF NOT EXISTS agents_team ON agents (team_id)",
        f"""CREATE TABLE IF NOT EXISTS assignments (
    id {d.autoinc_pk},
    device_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT
)""",
        "CREATE INDEX IF NOT EXISTS assignments_device_from ON assignments (device_id, valid_from)",
        "CREATE INDEX IF NOT EXISTS assignments_agent_from ON assignments (agent_id, valid_from)",
        f"CREATE TABLE IF NOT EXISTS call_facts (call_id TEXT PRIMARY KEY,\n    {facts}\n)",
        """CREATE TABLE IF NOT EXISTS device_models (
    device_id TEXT PRIMARY KEY,
    last_call_at TEXT NOT NULL,
    tone_model TEXT,
    pipeline TEXT
)""",
        """CREATE TABLE IF NOT EXISTS dash_users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    pw_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
)""",
        """CREATE TABLE IF NOT EXISTS dash_sessions (
    token_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
)""",
        "CREATE INDEX IF NOT EXISTS dash_sessions_expires ON dash_sessions (expires_at)",
        # Team pages aggregate over the team's agents; the store's (agent_id, started_at) index
        # serves per-agent ranges, this one the "all agents in a period" overview.
        "CREATE INDEX IF NOT EXISTS calls_started_agent ON calls (started_at, agent_id)",
        f"""CREATE TABLE IF NOT EXISTS call_rollup (
    day TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    {rollup},
    PRIMARY KEY (day, agent_id)
){clustered}""",
        "CREATE INDEX IF NOT EXISTS call_rollup_agent_day ON call_rollup (agent_id, day)",
        f"""CREATE TABLE IF NOT EXISTS call_rollup_month (
    month TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    {rollup},
    PRIMARY KEY (month, agent_id)
){clustered}""",
        "CREATE INDEX IF NOT EXISTS call_rollup_month_agent ON call_rollup_month (agent_id, month)",
        f"""CREATE TABLE IF NOT EXISTS call_rollup_fleet (
    day TEXT PRIMARY KEY,
    {rollup}
)""",
        _meta_table(store),
    ]


def _meta_table(store: Store) -> str:
    return f"""CREATE TABLE IF NOT EXISTS dash_rollup_meta (
    id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL,
    pace_fast_syl_s {store.dialect.real} NOT NULL
)"""



_SEMI4, _SEMI8 = ";\n    ", ";\n        "


def _sqlite_trigger() -> list[str]:
    cols = ", ".join(FACT_COLUMNS)
    # Dropped and re-created so a database made by an older version gets the rollup statements.
    return ["DROP TRIGGER IF EXISTS calls_dash_facts", f"""CREATE TRIGGER calls_dash_facts AFTER INSERT ON calls
BEGIN
    UPDATE calls SET agent_id = {agent_at_sql('NEW.device_id', 'NEW.started_at')}
        WHERE call_id = NEW.call_id AND NEW.agent_id IS NULL;
    INSERT INTO call_facts (call_id, {cols}) VALUES (NEW.call_id, {', '.join(_SQLITE_FACTS)})
        ON CONFLICT (call_id) DO NOTHING;
    INSERT INTO device_models (device_id, last_call_at, tone_model, pipeline)
        VALUES (NEW.device_id, NEW.started_at, json_extract(NEW.summary, '$.model.tone'),
                json_extract(NEW.summary, '$.model.pipeline'))
        ON CONFLICT (device_id) DO UPDATE SET last_call_at = excluded.last_call_at,
            tone_model = excluded.tone_model, pipeline = excluded.pipeline
        WHERE excluded.last_call_at >= device_models.last_call_at;
    {_rollup_select('c.call_id = NEW.call_id')};
    {_rollup_select('c.call_id = NEW.call_id', 'call_rollup_month')};
    {_rollup_select('c.call_id = NEW.call_id', 'call_rollup_fleet')};
END""", "DROP TRIGGER IF EXISTS calls_dash_rollup_delete",
            f"""CREATE TRIGGER calls_dash_rollup_delete AFTER DELETE ON calls
BEGIN
    {_SEMI4.join(_rollup_group_refresh('OLD'))};
END"""]


def _pg_trigger() -> list[str]:
    cols = ", ".join(FACT_COLUMNS)
    return [f"""CREATE OR REPLACE FUNCTION calls_dash_facts() RETURNS trigger AS $$
DECLARE j jsonb := NEW.summary::jsonb;
BEGIN
    IF NEW.agent_id IS NULL THEN
        NEW.agent_id := {agent_at_sql('NEW.device_id', 'NEW.started_at')};
    END IF;
    INSERT INTO call_facts (call_id, {cols}) VALUES (NEW.call_id, {', '.join(_PG_FACTS)})
        ON CONFLICT (call_id) DO NOTHING;
    INSERT INTO device_models (device_id, last_call_at, tone_model, pipeline)
        VALUES (NEW.device_id, NEW.started_at, j->'model'->>'tone', j->'model'->>'pipeline')
        ON CONFLICT (device_id) DO UPDATE SET last_call_at = excluded.last_call_at,
            tone_model = excluded.tone_model, pipeline = excluded.pipeline
        WHERE excluded.last_call_at >= device_models.last_call_at;
    RETURN NEW;
END $$ LANGUAGE plpgsql""",
            "DROP TRIGGER IF EXISTS calls_dash_facts ON calls",
            "CREATE TRIGGER calls_dash_facts BEFORE INSERT ON calls FOR EACH ROW EXECUTE FUNCTION calls_dash_facts()",
            # The rollup reads the stored row (attributed agent, facts), so it runs AFTER the insert;
            # rows skipped by ON CONFLICT DO NOTHING fire no AFTER trigger.
            f"""CREATE OR REPLACE FUNCTION calls_dash_rollup() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        {_SEMI8.join(_rollup_group_refresh('OLD'))};
        RETURN OLD;
    END IF;
    {_rollup_select('c.call_id = NEW.call_id')};
    {_rollup_select('c.call_id = NEW.call_id', 'call_rollup_month')};
    {_rollup_select('c.call_id = NEW.call_id', 'call_rollup_fleet')};
    RETURN NEW;
END $$ LANGUAGE plpgsql""",
            "DROP TRIGGER IF EXISTS calls_dash_rollup ON calls",
            "CREATE TRIGGER calls_dash_rollup AFTER INSERT OR DELETE ON calls FOR EACH ROW "
            "EXECUTE FUNCTION calls_dash_rollup()"]


_done: set[tuple[int, str]] = set()
_done_lock = threading.Lock()


def ensure_schema(store: Store) -> None:
    """Create the dashboard's tables, indexes and trigger once per store, then backfill."""
    key = (id(store), store.url)
    with _done_lock:
        if key in _done:
            return
        stmts = _tables(store) + (_sqlite_trigger() if store.dialect is SQLITE else _pg_trigger())
        with store.transaction() as conn:
            if store.dialect is not SQLITE:
                conn.execute("SELECT pg_advisory_xact_lock(74201)")
            # rollups of another format version have another layout: dropped (derived data),
            # re-created below and rebuilt from the calls by ensure_rollup
            conn.execute(_meta_table(store))
            row = conn.execute("SELECT version FROM dash_rollup_meta WHERE id = 1").fetchone()
            if row is not None and int(row[0]) != ROLLUP_VERSION:
                log.info("dashboard rollup format %s → %s: dropping the old rollup tables", row[0], ROLLUP_VERSION)
                for t in ("call_rollup", "call_rollup_month", "call_rollup_fleet"):
                    conn.execute(f"DROP TABLE IF EXISTS {t}")
                conn.execute("DELETE FROM dash_rollup_meta")
            for s in stmts:
                conn.execute(s)
        backfill(store)
        _done.add(key)


def backfill(store: Store) -> int:
    """Facts for calls stored before the trigger existed (or by another tool); returns how many."""
    d = store.dialect
    cols = ", ".join(FACT_COLUMNS)
    if d is SQLITE:
        exprs = ", ".join(e.replace("NEW.summary", "c.summary") for e in _SQLITE_FACTS)
        ins = (f"INSERT INTO call_facts (call_id, {cols}) SELECT c.call_id, {exprs} FROM calls c "
               "WHERE NOT EXISTS (SELECT 1 FROM call_facts f WHERE f.call_id = c.call_id)")
        models = ("INSERT INTO device_models (device_id, last_call_at, tone_model, pipeline) "
                  "SELECT c.device_id, c.started_at, json_extract(c.summary, '$.model.tone'), "
                  "json_extract(c.summary, '$.model.pipeline') FROM (SELECT device_id, MAX(started_at) AS m "
                  "FROM calls WHERE device_id NOT IN (SELECT device_id FROM device_models) GROUP BY device_id) x "
                  "JOIN calls c ON c.device_id = x.device_id AND c.started_at = x.m "
                  "WHERE true ON CONFLICT (device_id) DO NOTHING")
    else:
        exprs = ", ".join(_PG_FACTS)
        ins = (f"INSERT INTO call_facts (call_id, {cols}) SELECT c.call_id, {exprs} FROM "
               "(SELECT call_id, summary::jsonb AS j FROM calls c0 WHERE NOT EXISTS "
               "(SELECT 1 FROM call_facts f WHERE f.call_id = c0.call_id)) c")
        models = ("INSERT INTO device_models (device_id, last_call_at, tone_model, pipeline) "
                  "SELECT DISTINCT ON (device_id) device_id, started_at, summary::jsonb->'model'->>'tone', "
                  "summary::jsonb->'model'->>'pipeline' FROM calls c WHERE NOT EXISTS (SELECT 1 FROM "
                  "device_models m WHERE m.device_id = c.device_id) ORDER BY device_id, started_at DESC "
                  "ON CONFLICT (device_id) DO NOTHING")
    count = "SELECT (SELECT COUNT(*) FROM calls) - (SELECT COUNT(*) FROM call_facts)"
    if int(store._execute(count).fetchone()[0]) <= 0:
        return 0                          # every call already has its facts (checked cheaply)
    with store.transaction() as conn:
        n = conn.execute(ins).rowcount
        conn.execute(models)
    if n:
        log.info("dashboard facts backfilled for %d calls", n)
    return max(0, n or 0)


def lock_rollup(conn, store: Store) -> None:
    """PostgreSQL: hold off concurrent rollup writers (ingest triggers) until this transaction ends,
    so a recompute sees every committed call exactly once. SQLite transactions already serialise
    writers (BEGIN IMMEDIATE)."""
    if store.dialect is not SQLITE:
        conn.execute("LOCK TABLE call_rollup, call_rollup_month, call_rollup_fleet IN SHARE ROW EXCLUSIVE MODE")


def reattribute(conn, store: Store, device_id: str, since: str, until: str | None) -> None:
    """Recompute ``calls.agent_id`` for one device's calls in [since, until) after an assignment
    change, and the rollup rows of the agents concerned (before and after) for those days
    (same transaction)."""
    lock_rollup(conn, store)
    d = store.dialect
    rng = "device_id = ? AND started_at >= ?"
    params: list = [device_id, since]
    if until is not None:
        rng += " AND started_at < ?"
        params.append(until)
    agents_sql = d.sql(f"SELECT DISTINCT COALESCE(agent_id, '') FROM calls WHERE {rng}")
    agents = {r[0] for r in conn.execute(agents_sql, tuple(params)).fetchall()}
    conn.execute(d.sql(f"UPDATE calls SET agent_id = {agent_at_sql('calls.device_id', 'calls.started_at')} "
                       f"WHERE {rng}"), tuple(params))
    agents |= {r[0] for r in conn.execute(agents_sql, tuple(params)).fetchall()}
    refresh_rollup(conn, store, sorted(agents), since[:10], until[:10] if until is not None else None)


def refresh_rollup(conn, store: Store, agent_ids: list[str], first_day: str, last_day: str | None) -> None:
    """Recompute the day and month rollup rows of ``agent_ids`` ('' = calls without an agent)
    for the UTC days ``first_day``..``last_day`` (inclusive; None = every later day) from their
    stored calls (read through the ``(agent_id, started_at)`` index)."""
    d = store.dialect
    nxt = (date.fromisoformat(last_day) + timedelta(days=1)).isoformat() if last_day is not None else None
    for agent in agent_ids:
        who = "c.agent_id IS NULL" if agent == "" else "c.agent_id = ?"
        who_p = [] if agent == "" else [agent]
        dele, mdele = "DELETE FROM call_rollup WHERE agent_id = ? AND day >= ?", \
            "DELETE FROM call_rollup_month WHERE agent_id = ? AND month >= ?"
        where, mwhere = f"{who} AND c.started_at >= ?", "r.agent_id = ? AND r.day >= ?"
        if last_day is not None:
            dele += " AND day <= ?"
            mdele += " AND month <= ?"
            where += " AND c.started_at < ?"
            mwhere += " AND r.day < ?"
        bound = [] if last_day is None else [last_day]
        conn.execute(d.sql(dele), (agent, first_day, *bound))
        conn.execute(d.sql(_rollup_select(where)), (*who_p, first_day, *([] if nxt is None else [nxt])))
        # the agent's month rows of those months, re-summed from its day rows
        conn.execute(d.sql(mdele), (agent, first_day[:7], *([] if last_day is None else [last_day[:7]])))
        conn.execute(d.sql(_months_from_days(mwhere)),
                     (agent, first_day[:7], *([] if last_day is None else [last_day[:7] + "-99"])))


def rollup_state(store: Store) -> tuple[int, float] | None:
    """(version, pace_fast_syl_s) of the stored rollup, or None before the first build."""
    row = store._execute("SELECT version, pace_fast_syl_s FROM dash_rollup_meta WHERE id = 1").fetchone()
    return (int(row[0]), float(row[1])) if row else None


def rebuild_rollup(store: Store, pace_fast_syl_s: float) -> int:
    """Rebuild the whole rollup from ``calls`` (one transaction; ingest waits); returns its rows."""
    d = store.dialect
    t0 = time.perf_counter()
    with store.transaction() as conn:
        if d is not SQLITE:
            conn.execute("LOCK TABLE calls IN SHARE ROW EXCLUSIVE MODE")
        lock_rollup(conn, store)
        conn.execute(d.sql("INSERT INTO dash_rollup_meta (id, version, pace_fast_syl_s) VALUES (1, ?, ?) "
                           "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
                           "pace_fast_syl_s = excluded.pace_fast_syl_s"), (ROLLUP_VERSION, float(pace_fast_syl_s)))
        conn.execute("DELETE FROM call_rollup")
        conn.execute("DELETE FROM call_rollup_month")
        conn.execute("DELETE FROM call_rollup_fleet")
        conn.execute(_rollup_select("true"))
        conn.execute(_months_from_days("true"))
        conn.execute(_fleet_from_days("true"))
        n = int(conn.execute("SELECT COUNT(*) FROM call_rollup").fetchone()[0])
    log.info("dashboard rollup rebuilt: %d day × agent rows in %.1f s", n, time.perf_counter() - t0)
    return n


def ensure_rollup(store: Store, pace_fast_syl_s: float) -> bool:
    """Make the rollup current for this pace threshold; rebuilds (returns True) when it is missing,
    of an older format, built for another threshold, or does not count the same calls as ``calls``
    (calls stored before the trigger existed). The check is two COUNT/SUM queries."""
    ensure_schema(store)
    with _done_lock:
        state = rollup_state(store)
        if state == (ROLLUP_VERSION, float(pace_fast_syl_s)):
            row = store._execute("SELECT (SELECT COUNT(*) FROM calls), "
                                 "(SELECT COALESCE(SUM(calls), 0) FROM call_rollup), "
                                 "(SELECT COALESCE(SUM(calls), 0) FROM call_rollup_month), "
                                 "(SELECT COALESCE(SUM(calls), 0) FROM call_rollup_fleet)").fetchone()
            if int(row[0]) == int(row[1]) == int(row[2]) == int(row[3]):
                return False
            log.info("dashboard rollup counts %s calls of %s: rebuilding", row[1], row[0])
        rebuild_rollup(store, pace_fast_syl_s)
        return True
