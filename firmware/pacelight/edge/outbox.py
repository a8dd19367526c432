"""The device outbox: call summaries stored durably until the host acknowledges them.

Rules (CONTRACT.md section 4):

* :meth:`Outbox.put` validates the summary and commits it to SQLite *before* anything is
  sent; it is idempotent on ``call_id`` (putting the same call twice keeps one row).
* A summary leaves the outbox only on the host's application-level ack for that ``call_id``
  (:meth:`ack`, sent by the aggregator after its database commit) — never on PUBACK, which
  only means the broker holds it in memory.
* A ``rejected`` ack (the host quarantined it) moves it to the ``rejected`` table for
  diagnostics: resending an invalid summary cannot succeed.

Durability: WAL journal with ``synchronous=FULL``. The appliance loses power whenever the
headset box is unplugged; with ``NORMAL`` a WAL commit can roll back on power loss, and a
summary the device already considers queued would be lost. A call produces one summary
(a few per hour), so the extra fsync per commit costs nothing that matters.

Bound: at most ``max_items`` unacked summaries (default 10,000 ≈ weeks of calls offline).
Policy when full: the *oldest* unacked summary is dropped to make room (recent calls are
the ones a supervisor acts on), and the persistent ``dropped_overflow`` counter is
incremented and logged. :meth:`Outbox._enforce_bound` is the single place for this policy.

Faults (issue 10; tests in tests/test_outbox_faults.py):

* Power loss / kill mid-write: every change is one SQLite transaction (WAL, ``synchronous=FULL``);
  :meth:`put` returns only after the commit, so a summary reported as stored survives, and a
  transaction cut short is rolled back on the next open.
* Corruption (worn SD card): the file is checked with ``PRAGMA quick_check`` on open. A corrupt
  outbox is moved aside as ``<name>.corrupt-<UTC time>`` (with its -wal/-shm), whatever rows can
  still be read are salvaged into a new empty outbox, and the event is logged and counted
  (``corrupt_recovered``, ``salvaged``); ``recovered_from`` names the file kept for diagnosis.
* Disk full (or the optional ``max_bytes`` bound, SQLite ``max_page_count``): :meth:`put` raises
  :class:`OutboxStorageError` with the reason and the summary is *not* reported as stored; no
  stored summary is dropped to make room (only the item-count bound drops, oldest first, counted).
  ``write_errors`` counts these in memory (the disk may be too full to record them).
* Broker unreachable for days: the bound above (``max_items``, default 10,000 ≈ weeks of calls);
  ``counters()`` also reports ``oldest_pending_age_s`` for the device status.
* Clock skew: the host records its own ``received_at`` next to the device's ``started_at``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pacelight.errors import PacelightError
from pacelight.summary import CallSummary, parse_summary

log = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    call_id      TEXT PRIMARY KEY,
    payload      TEXT NOT NULL,
    created_at   REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_sent_at REAL
);
CREATE TABLE IF NOT EXISTS rejected (
    call_id     TEXT PRIMARY KEY,
    payload     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    rejected_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class OutboxStorageError(PacelightError):
    """A summary could not be stored (disk full, I/O error): it is not queued."""


@dataclass(frozen=True)
class OutboxItem:
    call_id: str
    payload: str
    created_at: float
    attempts: int
    last_sent_at: float | None


class Outbox:
    """SQLite outbox, safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: str | Path, max_items: int = DEFAULT_MAX_ITEMS, max_bytes: int | None = None) -> None:
        if max_items < 1:
            raise ValueError("max_items must be >= 1")
        if max_bytes is not None and max_bytes < 64 * 1024:
            raise ValueError("max_bytes must be >= 64 KiB")
        self.path = Path(path)
        self.max_items = int(max_items)
        self.max_bytes = max_bytes
        self.write_errors = 0
        self.recovered_from: Path | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = self._open_checked()
        if max_bytes is not None:
            (page,) = self._db.execute("PRAGMA page_size").fetchone()
            self._db.execute(f"PRAGMA max_page_count = {max(16, int(max_bytes) // int(page))}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _open_checked(self) -> sqlite3.Connection:
        """Open, check (``quick_check``) and create the schema; a corrupt file is moved aside."""
        problem = None
        db = None
        try:
            db = self._connect()
            rows = db.execute("PRAGMA quick_check").fetchall()
            if [r[0] for r in rows] != ["ok"]:
                problem = "; ".join(str(r[0]) for r in rows[:3])
        except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed", I/O errors
            problem = str(exc)
        if problem is None:
            self._db = db
            with self._tx():
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
            return db
        if db is not None:
            db.close()
        salvaged = self._salvage()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.replace(Path(str(aside) + suffix))
        self.recovered_from = aside
        db = self._connect()
        self._db = db
        with self._tx():
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.executemany("INSERT OR IGNORE INTO outbox (call_id, payload, created_at) VALUES (?, ?, ?)", salvaged)
            self._bump(db, "corrupt_recovered")
            self._bump(db, "salvaged", len(salvaged))
        log.error("outbox %s is corrupt (%s): moved aside to %s, %d summaries salvaged into a new outbox",
                  self.path, problem[:200], aside, len(salvaged))
        return db

    def _salvage(self) -> list[tuple[str, str, float]]:
        """Best effort: the unacked summaries that can still be read and validated."""
        out: list[tuple[str, str, float]] = []
        try:
            src = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1.0)
        except sqlite3.Error:
            return out
        try:
            cur = src.execute("SELECT call_id, payload, created_at FROM outbox")
            while True:
                try:
                    row = cur.fetchone()
                except sqlite3.Error:
                    break
                if row is None:
                    break
                try:
                    s = parse_summary(row[1])
                except (ValueError, TypeError):
                    continue
                if s.call_id == row[0]:
                    out.append((row[0], row[1], float(row[2] or time.time())))
        except sqlite3.Error:
            pass
        finally:
            src.close()
        return out

    # -- transactions ---------------------------------------------------------------------
    class _Tx:
        def __init__(self, box: Outbox) -> None:
            self.box = box

        def __enter__(self) -> sqlite3.Connection:
            self.box._lock.acquire()
            self.box._db.execute("BEGIN IMMEDIATE")
            return self.box._db

        def __exit__(self, exc_type, exc, tb) -> None:
            try:
                self.box._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.box._lock.release()

    def _tx(self) -> Outbox._Tx:
        return Outbox._Tx(self)

    # -- API ------------------------------------------------------------------------------
    def put(self, summary: CallSummary | dict | str | bytes) -> str:
        """Validate and store a summary durably; returns its call_id (idempotent)."""
        if not isinstance(summary, CallSummary):
            summary = parse_summary(summary)
        payload = summary.to_json()
        try:
            with self._tx() as db:
                cur = db.execute(
                    "INSERT INTO outbox (call_id, payload, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(call_id) DO NOTHING",
                    (summary.call_id, payload, time.time()),
                )
                if cur.rowcount:
                    self._enforce_bound(db)
        except sqlite3.OperationalError as exc:  # SQLITE_FULL, SQLITE_IOERR: rolled back
            self.write_errors += 1
            full = "full" in str(exc).lower()
            log.error("outbox %s: could not store summary %s: %s", self.path, summary.call_id, exc)
            raise OutboxStorageError(
                f"outbox {self.path}: {'storage full' if full else 'write failed'} ({exc}); summary "
                f"{summary.call_id} not stored") from None
        return summary.call_id

    def _enforce_bound(self, db: sqlite3.Connection) -> None:
        """Keep at most ``max_items`` rows: drop the oldest, count and log each drop."""
        (n,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        excess = n - self.max_items
        if excess <= 0:
            return
        rows = db.execute("SELECT call_id FROM outbox ORDER BY created_at, call_id LIMIT ?",
                          (excess,)).fetchall()
        db.executemany("DELETE FROM outbox WHERE call_id = ?", rows)
        self._bump(db, "dropped_overflow", len(rows))
        log.warning("outbox full (%d items): dropped %d oldest unacked summaries: %s",
                    self.max_items, len(rows), ", ".join(r[0] for r in rows[:5]))

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str, by: int = 1) -> None:
        db.execute("INSERT INTO counters (name, value) VALUES (?, ?) "
                   "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, by))

    def pending(self, limit: int | None = None, sent_before: float | None = None) -> list[OutboxItem]:
        """Unacked summaries, oldest first; ``sent_before``: only those never sent or last
        sent before that time (for resending after an ack timeout)."""
        sql = "SELECT call_id, payload, created_at, attempts, last_sent_at FROM outbox"
        params: list = []
        if sent_before is not None:
            sql += " WHERE last_sent_at IS NULL OR last_sent_at < ?"
            params.append(sent_before)
        sql += " ORDER BY created_at, call_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [OutboxItem(*r) for r in rows]

    def mark_sent(self, call_ids: list[str], at: float | None = None) -> None:
        at = time.time() if at is None else at
        with self._tx() as db:
            db.executemany("UPDATE outbox SET attempts = attempts + 1, last_sent_at = ? WHERE call_id = ?",
                           [(at, c) for c in call_ids])

    def reset_sent(self) -> None:
        """Forget send times (after a reconnect every unacked summary is due again)."""
        with self._tx() as db:
            db.execute("UPDATE outbox SET last_sent_at = NULL")

    def ack(self, call_id: str) -> bool:
        """The host stored ``call_id``: delete it. Returns False if it was not queued."""
        with self._tx() as db:
            deleted = db.execute("DELETE FROM outbox WHERE call_id = ?", (call_id,)).rowcount
            if deleted:
                self._bump(db, "acked")
        return bool(deleted)

    def reject(self, call_id: str, reason: str) -> bool:
        """The host quarantined ``call_id``: move it to ``rejected`` with the reason."""
        with self._tx() as db:
            row = db.execute("SELECT payload FROM outbox WHERE call_id = ?", (call_id,)).fetchone()
            if row is None:
                return False
            db.execute("INSERT OR REPLACE INTO rejected (call_id, payload, reason, rejected_at) "
                       "VALUES (?, ?, ?, ?)", (call_id, row[0], reason[:2000], time.time()))
            db.execute("DELETE FROM outbox WHERE call_id = ?", (call_id,))
            self._bump(db, "rejected")
        log.warning("host rejected summary %s: %s", call_id, reason)
        return True

    def rejected(self) -> list[tuple[str, str]]:
        with self._lock:
            return self._db.execute("SELECT call_id, reason FROM rejected ORDER BY rejected_at").fetchall()

    def contains(self, call_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM outbox WHERE call_id = ?", (call_id,)).fetchone() is not None

    def counters(self) -> dict[str, int]:
        with self._lock:
            out = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        for k in ("acked", "rejected", "dropped_overflow", "corrupt_recovered", "salvaged"):
            out.setdefault(k, 0)
        out["pending"] = len(self)
        out["write_errors"] = self.write_errors
        with self._lock:
            (oldest,) = self._db.execute("SELECT MIN(created_at) FROM outbox").fetchone()
        out["oldest_pending_age_s"] = int(max(0.0, time.time() - oldest)) if oldest is not None else 0
        return out

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
