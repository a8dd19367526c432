"""Device reliability faults (issue 10): kill mid-write, corruption, disk full, long outage, clock skew.

Invariant everywhere: a summary that :meth:`Outbox.put` reported as stored is never lost.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PYTHON
from pacelight.edge.outbox import Outbox, OutboxStorageError
from test_mqtt import FAST, wait_until

WRITER = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from conftest import build_summary
from pacelight.edge.outbox import Outbox
box = Outbox(sys.argv[1])
if sys.argv[3] == "loop":
    i = 0
    while True:
        cid = box.put(build_summary(f"k-{i:06d}", "dev-k"))
        print(cid, flush=True)       # reported as stored only after put() returned (committed)
        i += 1
else:                                # hold a transaction open, then get killed inside it
    with box._tx() as db:
        db.execute("INSERT INTO outbox (call_id, payload, created_at) VALUES ('half', 'x', 0)")
        print("in-tx", flush=True)
        time.sleep(60)
"""


def _writer(path: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-c", WRITER, str(path), str(Path(__file__).parent), mode],
                            stdout=subprocess.PIPE, text=True)


def test_sigkill_mid_write_loses_nothing_reported_as_stored(tmp_path: Path):
    path = tmp_path / "outbox.sqlite"
    for round_ in range(3):
        proc = _writer(path, "loop")
        reported = []
        deadline = time.monotonic() + 20
        target = 30 + 17 * round_
        while len(reported) < target and time.monotonic() < deadline:
            reported.append(proc.stdout.readline().strip())
        proc.send_signal(signal.SIGKILL)   # somewhere inside a following put()
        proc.wait()
        with Outbox(path) as box:
            assert box._db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            assert box.recovered_from is None
            missing = [c for c in reported if c and not box.contains(c)]
            assert not missing
            for c in reported:
                box.ack(c)
    # killed while a transaction is open: the uncommitted row is rolled back, the file stays usable
    proc = _writer(path, "tx")
    assert proc.stdout.readline().strip() == "in-tx"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Outbox(path) as box:
        assert not box.contains("half")
        assert box._db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        box.put(_summary("after-kill"))  # no stale lock
        assert box.contains("after-kill")


def _summary(call_id: str, device_id: str = "dev-k"):
    from conftest import build_summary

    return build_summary(call_id, device_id)


def test_corrupt_outbox_is_moved_aside_salvaged_and_counted(tmp_path: Path, caplog):
    path = tmp_path / "outbox.sqlite"
    with Outbox(path) as box:
        for i in range(200):
            box.put(_summary(f"c-{i:04d}"))
        box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    # damage pages in the middle of the file (a worn SD card); the header stays readable
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(8192))
    with caplog.at_level("ERROR"):
        box = Outbox(path)
    try:
        assert box.recovered_from is not None and box.recovered_from.exists()
        assert "corrupt" in caplog.text
        c = box.counters()
        assert c["corrupt_recovered"] == 1 and c["salvaged"] == len(box) < 200
        assert box._db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        box.put(_summary("new-after"))
        assert box.contains("new-after")
    finally:
        box.close()
    # a file that is not a database at all (zeroed by a bad write)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"\0" * 4096 + b"garbage" * 100)
    with Outbox(junk) as box2:
        assert box2.recovered_from is not None and len(box2) == 0
        assert box2.counters()["corrupt_recovered"] == 1
    # a healthy outbox is never moved aside
    with Outbox(path) as box3:
        assert box3.recovered_from is None and box3.contains("new-after")


def test_disk_full_reports_the_error_and_keeps_what_was_stored(tmp_path: Path):
    path = tmp_path / "small.sqlite"
    box = Outbox(path, max_bytes=64 * 1024)   # SQLite max_page_count: a tiny "disk"
    stored, error = [], None
    for i in range(500):
        try:
            stored.append(box.put(_summary(f"f-{i:04d}")))
        except OutboxStorageError as exc:
            error = exc
            break
    assert error is not None and "full" in str(error) and f"f-{len(stored):04d}" in str(error)
    assert 5 < len(stored) < 500
    assert box.counters()["write_errors"] == 1
    assert not box.contains(f"f-{len(stored):04d}")
    assert all(box.contains(c) for c in stored)       # nothing stored was dropped to make room
    # still full for new summaries, but acks (deletes) work and free space again
    with pytest.raises(OutboxStorageError):
        box.put(_summary("f-more"))
    for c in stored[:10]:
        assert box.ack(c)
    box.put(_summary("f-more"))
    box.close()
    with Outbox(path) as again:
        assert len(again) == len(stored) - 10 + 1
        assert again._db.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_broker_unreachable_for_long_bounded_outbox_then_delivered(tmp_path: Path, mosquitto_factory):
    """Offline: the outbox keeps the newest max_items (drops counted), everything kept is delivered later."""
    from conftest import free_port
    from pacelight.edge.publisher import Publisher
    from pacelight_host.ingest import Aggregator
    from pacelight_host.store import Store

    port = free_port()
    box = Outbox(tmp_path / "o.sqlite", max_items=10)
    # the broker is down: the device still finishes calls
    broker_url_without_broker = f"mqtt://127.0.0.1:{port}"
    for i in range(25):
        box.put(_summary(f"off-{i:03d}", "dev-off"))
    c = box.counters()
    assert c["pending"] == 10 and c["dropped_overflow"] == 15
    assert [i.call_id for i in box.pending()] == [f"off-{i:03d}" for i in range(15, 25)]
    assert c["oldest_pending_age_s"] >= 0
    broker = mosquitto_factory(port)
    cred = broker.credential("local")
    store = Store.open(f"sqlite:///{tmp_path / 'h.sqlite'}")
    agg = Aggregator(store, broker.url, client_id="agg-off").start()
    pub = Publisher("dev-off", broker_url_without_broker, box, username=cred.username, password=cred.password,
                    settings=FAST).start()
    try:
        assert agg.wait_ready(10)
        assert wait_until(lambda: len(box) == 0, timeout=20)
        assert store.count_calls() == 10
        assert box.counters()["acked"] == 10 and box.counters()["dropped_overflow"] == 15
    finally:
        pub.stop()
        agg.stop()
        store.close()
        box.close()


def test_clock_skew_host_keeps_its_own_receive_time(mosquitto, aggregator, tmp_path: Path, make_summary):
    from test_aggregator import _raw_publisher

    c = _raw_publisher(mosquitto.port, mosquitto)
    skewed = make_summary("skew-1", "dev-skew", started_at="2031-01-01T00:00:00Z")  # device clock years ahead
    c.publish("pacelight/dev-skew/calls", skewed.to_json(), qos=1)
    c.publish("pacelight/dev-skew/status", json.dumps({"state": "online", "device_id": "dev-skew",
                                                        "ts": "2031-01-01T00:00:00Z"}), qos=1, retain=True)
    assert wait_until(lambda: aggregator.store.get_call("skew-1") is not None)
    c.loop_stop()
    with sqlite3.connect(tmp_path / "host.sqlite") as conn:  # the sqlite_store fixture's file
        started, received = conn.execute("SELECT started_at, received_at FROM calls WHERE call_id = 'skew-1'"
                                         ).fetchone()
    assert started.startswith("2031-01-01")
    from datetime import UTC, datetime

    rcv = datetime.fromisoformat(received.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - rcv).total_seconds()) < 120   # host time, not the device's
