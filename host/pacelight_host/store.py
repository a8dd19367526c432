"""Host storage of call summaries: SQLite (default, WAL) or PostgreSQL (psycopg 3).

One small dialect layer (:class:`Dialect`) hides the differences (placeholders, types,
autoincrement); every statement is written once. Tables:

* ``calls`` — one row per ``call_id`` (primary key → idempotent, stored exactly once): device,
  nullable agent, ``started_at``, host ``received_at`` (clock skew), the main metrics as
  columns for queries, and the full summary JSON.
* ``quarantine`` — every rejected message with the reason (nothing is dropped silently).
* ``devices`` — registry from status messages and calls: state, last seen, version, skew.

Timestamps are stored as fixed-width ISO 8601 UTC text (``2026-11-23T10:00:00.000000Z``) in
both databases, so they sort and compare correctly as strings and read back identically.

Connections are per thread (the ingest thread and the dashboard thread each get their own).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pacelight.errors import InputError
from pacelight.summary import CallSummary

log = logging.getLogger(__name__)

QUARANTINE_PAYLOAD_MAX_BYTES = 64 * 1024


def iso(ts: datetime) -> str:
    """Fixed-width ISO 8601 UTC text used for every stored timestamp."""
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Dialect:
    name: str
    param: str            # placeholder
    autoinc_pk: str       # integer autoincrement primary key column type
    blob: str
    real: str = "DOUBLE PRECISION"

    def sql(self, text: str) -> str:
        """Statements are written with ``?``; PostgreSQL gets ``%s``."""
        return text if self.param == "?" else text.replace("?", self.param)


SQLITE = Dialect("sqlite", "?", "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB", "REAL")
POSTGRES = Dialect("postgresql", "%s", "BIGSERIAL PRIMARY KEY", "BYTEA")

# (column, type, extractor) — the queryable metric columns of ``calls``.
_METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("duration_s", "REAL"),
    ("agent_talk_s", "REAL"),
    ("customer_talk_s", "REAL"),
    ("silence_s", "REAL"),
    ("overlap_s", "REAL"),
    ("agent_ratio", "REAL"),
    ("overtalk_events", "INTEGER"),
    ("agent_interruptions", "INTEGER"),
    ("customer_interruptions", "INTEGER"),
    ("agent_pace_syl_s", "REAL"),
    ("customer_pace_syl_s", "REAL"),
    ("agent_longest_monologue_s", "REAL"),
    ("agent_tone_high", "REAL"),
    ("agent_tone_mean", "REAL"),
    ("customer_tone_high", "REAL"),
    ("customer_tone_mean", "REAL"),
    ("cue_count", "INTEGER"),
)
METRIC_NAMES = tuple(c for c, _ in _METRIC_COLUMNS)


def _metrics(s: CallSummary) -> tuple:
    return (
        s.duration_s, s.talk.agent_s, s.talk.customer_s, s.talk.silence_s, s.talk.overlap_s,
        s.talk.agent_ratio, s.overtalk.events, s.overtalk.agent_interruptions,
        s.overtalk.customer_interruptions, s.pace.agent_syl_s, s.pace.customer_syl_s,
        s.monologue.agent_longest_s, s.tone.agent.high, s.tone.agent.mean_score,
        s.tone.customer.high, s.tone.customer.mean_score, sum(1 for c in s.cues if c.state == "on"),
    )


def _schema(d: Dialect) -> list[str]:
    real = d.real
    metric_cols = ",\n    ".join(f"{c} {real if t == 'REAL' else 'INTEGER'}" for c, t in _METRIC_COLUMNS)
    return [
        f"""CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    agent_id TEXT,
    schema_version TEXT NOT NULL,
    started_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    {metric_cols},
    summary TEXT NOT NULL
)""",
        "CREATE INDEX IF NOT EXISTS calls_device_started ON calls (device_id, started_at)",
        "CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at)",
        "CREATE INDEX IF NOT EXISTS calls_agent_started ON calls (agent_id, started_at)",
        f"""CREATE TABLE IF NOT EXISTS quarantine (
    id {d.autoinc_pk},
    received_at TEXT NOT NULL,
    topic TEXT NOT NULL,
    device_id TEXT,
    call_id TEXT,
    reason TEXT NOT NULL,
    payload_bytes INTEGER NOT NULL,
    payload {d.blob}
)""",
        "CREATE INDEX IF NOT EXISTS quarantine_received ON quarantine (received_at)",
        f"""CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    version TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    state_changed_at TEXT,
    status_ts TEXT,
    clock_skew_s {real},
    calls_received INTEGER NOT NULL DEFAULT 0
)""",
    ]


@dataclass(frozen=True)
class CallRecord:
    """A validated summary ready to store."""

    summary: CallSummary
    received_at: datetime
    raw_json: str | None = None   # the validated JSON as received (else summary.to_json())


@dataclass(frozen=True)
class QuarantineRecord:
    topic: str
    reason: str
    payload: bytes
    received_at: datetime
    device_id: str | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class StatusRecord:
    device_id: str
    state: str
    received_at: datetime
    version: str | None = None
    ts: datetime | None = None


@dataclass(frozen=True)
class CallFilters:
    device_id: str | None = None
    agent_id: str | None = None
    since: datetime | None = None       # started_at >= since
    until: datetime | None = None       # started_at < until
    limit: int = 1000
    offset: int = 0
    newest_first: bool = True


class Store:
    """Calls, quarantine and device registry in SQLite or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith(("postgresql://", "postgres://")):
            self.dialect = POSTGRES
            self._path = None
        elif url.startswith("sqlite:///"):
            # SQLAlchemy convention: sqlite:///relative.db, sqlite:////absolute/path.db
            path = url[len("sqlite:///"):]
            if not path:
                raise InputError(f"bad database URL {url!r}: missing path")
            self.dialect = SQLITE
            self._path = Path(path).expanduser()
            self._path.parent.mkdir(parents=True, exist_ok=True)
        else:
            raise InputError(f"bad database URL {url!r}: use sqlite:///PATH or postgresql://...")
        self._local = threading.local()
        self._all: list[Any] = []
        self._all_lock = threading.Lock()
        self._init_schema()

    @classmethod
    def open(cls, url: str) -> Store:
        return cls(url)

    # -- connections ----------------------------------------------------------------------
    def _connect(self):
        if self.dialect is SQLITE:
            import sqlite3

            conn = sqlite3.connect(str(self._path), timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # An ack promises durable storage, and NORMAL in WAL mode can roll back the last
            # commits on power loss (they would be acked but gone). FULL costs one fsync per
            # batch commit (hundreds of summaries), so ingest throughput is not limited by it.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - host extra not installed
            raise InputError("PostgreSQL needs psycopg: pip install 'pacelight[host]'") from exc
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise InputError(f"cannot connect to {self._safe_url()}: {str(exc).strip().splitlines()[0]}") from None

    def _safe_url(self) -> str:
        from urllib.parse import urlsplit

        p = urlsplit(self.url)
        return self.url.replace(f":{p.password}@", ":***@") if p.password else self.url

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _execute(self, sql: str, params: Sequence = ()):  # autocommit single statement
        conn = self._conn()
        return conn.execute(self.dialect.sql(sql), tuple(params))

    class _Tx:
        def __init__(self, store: Store) -> None:
            self.store = store

        def __enter__(self):
            conn = self.store._conn()
            conn.execute("BEGIN IMMEDIATE" if self.store.dialect is SQLITE else "BEGIN")
            return conn

        def __exit__(self, exc_type, exc, tb) -> None:
            conn = self.store._conn()
            conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def transaction(self) -> Store._Tx:
        return Store._Tx(self)

    def _init_schema(self) -> None:
        with self.transaction() as conn:
            for stmt in _schema(self.dialect):
                conn.execute(stmt)

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for c in conns:
            try:
                c.close()
            except Exception:
                pass
        self._local = threading.local()

    # -- writes ---------------------------------------------------------------------------
    def write_batch(self, calls: Iterable[CallRecord] = (), quarantined: Iterable[QuarantineRecord] = (),
                    statuses: Iterable[StatusRecord] = ()) -> set[str]:
        """Store a batch in ONE transaction; returns the call_ids that were new.

        Calls already present are left untouched (first stored version wins)."""
        d = self.dialect
        cols = ("call_id", "device_id", "agent_id", "schema_version", "started_at", "received_at",
                *METRIC_NAMES, "summary")
        insert_call = d.sql(f"INSERT INTO calls ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                            "ON CONFLICT (call_id) DO NOTHING")
        insert_q = d.sql("INSERT INTO quarantine (received_at, topic, device_id, call_id, reason, "
                         "payload_bytes, payload) VALUES (?, ?, ?, ?, ?, ?, ?)")
        seen_dev = d.sql(
            "INSERT INTO devices (device_id, state, first_seen, last_seen, calls_received) "
            "VALUES (?, 'unknown', ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
            "last_seen = CASE WHEN excluded.last_seen > devices.last_seen THEN excluded.last_seen "
            "ELSE devices.last_seen END, calls_received = devices.calls_received + excluded.calls_received")
        status_dev = d.sql(
            "INSERT INTO devices (device_id, state, version, first_seen, last_seen, state_changed_at, "
            "status_ts, clock_skew_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
            "state = excluded.state, version = COALESCE(excluded.version, devices.version), "
            "last_seen = excluded.last_seen, state_changed_at = excluded.state_changed_at, "
            "status_ts = excluded.status_ts, clock_skew_s = excluded.clock_skew_s")
        new: set[str] = set()
        per_device: dict[str, list] = {}
        with self.transaction() as conn:
            for rec in calls:
                s = rec.summary
                rcv = iso(rec.received_at)
                cur = conn.execute(insert_call, (s.call_id, s.device_id, None, s.schema_, iso(s.started_at), rcv,
                                                 *_metrics(s), rec.raw_json or s.to_json()))
                if cur.rowcount:
                    new.add(s.call_id)
                    entry = per_device.setdefault(s.device_id, [rcv, 0])
                    entry[0] = max(entry[0], rcv)
                    entry[1] += 1
            for q in quarantined:
                payload = bytes(q.payload[:QUARANTINE_PAYLOAD_MAX_BYTES])
                conn.execute(insert_q, (iso(q.received_at), q.topic, q.device_id, q.call_id, q.reason[:4000],
                                        len(q.payload), payload))
            for st in statuses:
                rcv = iso(st.received_at)
                skew = (st.received_at - st.ts).total_seconds() if st.ts is not None else None
                conn.execute(status_dev, (st.device_id, st.state, st.version, rcv, rcv, rcv,
                                          iso(st.ts) if st.ts else None, skew))
            for dev, (last, n) in per_device.items():
                conn.execute(seen_dev, (dev, last, last, n))
        return new

    def upsert_calls(self, summaries: Iterable[CallSummary | CallRecord],
                     received_at: datetime | None = None) -> set[str]:
        """Idempotently store summaries (one transaction); returns the new call_ids."""
        now = received_at or utcnow()
        recs = [s if isinstance(s, CallRecord) else CallRecord(s, now) for s in summaries]
        return self.write_batch(calls=recs)

    # -- reads ----------------------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence = ()) -> list[dict]:
        cur = self._execute(sql, params)
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def list_calls(self, filters: CallFilters | None = None, **kw) -> list[dict]:
        """Stored calls as dicts: the columns plus ``summary`` (the parsed JSON object)."""
        f = filters or CallFilters(**kw)
        where, params = [], []
        if f.device_id:
            where.append("device_id = ?")
            params.append(f.device_id)
        if f.agent_id:
            where.append("agent_id = ?")
            params.append(f.agent_id)
        if f.since:
            where.append("started_at >= ?")
            params.append(iso(f.since))
        if f.until:
            where.append("started_at < ?")
            params.append(iso(f.until))
        sql = "SELECT * FROM calls"
        if where:
            sql += " WHERE " + " AND ".join(where)
        order = "DESC" if f.newest_first else "ASC"
        sql += f" ORDER BY started_at {order}, call_id {order} LIMIT ? OFFSET ?"
        params += [max(0, int(f.limit)), max(0, int(f.offset))]
        rows = self._rows(sql, params)
        for r in rows:
            r["summary"] = json.loads(r["summary"])
        return rows

    def get_call(self, call_id: str) -> dict | None:
        rows = self._rows("SELECT * FROM calls WHERE call_id = ?", (call_id,))
        if not rows:
            return None
        rows[0]["summary"] = json.loads(rows[0]["summary"])
        return rows[0]

    def count_calls(self) -> int:
        return int(self._execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def call_ids(self) -> list[str]:
        return [r[0] for r in self._execute("SELECT call_id FROM calls").fetchall()]

    def devices(self) -> list[dict]:
        return self._rows("SELECT * FROM devices ORDER BY device_id")

    def list_quarantine(self, limit: int = 100, offset: int = 0) -> list[dict]:
        rows = self._rows("SELECT id, received_at, topic, device_id, call_id, reason, payload_bytes, payload "
                          "FROM quarantine ORDER BY id DESC LIMIT ? OFFSET ?", (int(limit), int(offset)))
        for r in rows:
            p = r.pop("payload")
            r["payload_preview"] = bytes(p[:512]).decode("utf-8", "replace") if p is not None else None
        return rows

    def count_quarantine(self) -> int:
        return int(self._execute("SELECT COUNT(*) FROM quarantine").fetchone()[0])
