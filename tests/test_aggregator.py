"""Host side: quarantine of bad messages, store (SQLite and PostgreSQL), the aggregator command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import PYTHON, free_port, summary_dict
from pacelight_host.store import CallFilters, Store, utcnow
from test_mqtt import subscriber, wait_until


def _raw_publisher(port: int, broker=None):
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if broker is not None:  # authenticated with the broker's local-tools credential
        broker.auth(c)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_bad_messages_are_quarantined_and_acked_as_rejected(mosquitto, aggregator, make_summary):
    watcher, got = subscriber(mosquitto.url, ["pacelight/+/ack"])
    c = _raw_publisher(mosquitto.port, mosquitto)
    bad_schema = summary_dict("bad-schema", "dev-q")
    bad_schema["talk"]["agent_ratio"] = 7.0
    huge = summary_dict("huge-1", "dev-q", cues=[{"t": 1.0, "kind": "pace", "state": "on"}] * 120_000)
    msgs = [
        ("pacelight/dev-q/calls", b"{not json"),
        ("pacelight/dev-q/calls", json.dumps(bad_schema).encode()),
        ("pacelight/dev-q/calls", json.dumps(huge).encode()),
        ("pacelight/dev-q/calls", make_summary("wrong-dev", device_id="dev-other").to_json().encode()),
        ("pacelight/dev-q/status", b'{"state": "sleeping"}'),
        ("pacelight/dev-q/calls", make_summary("good-1", device_id="dev-q").to_json().encode()),
    ]
    assert len(msgs[2][1]) > 4 * 1024 * 1024
    for t, p in msgs:
        c.publish(t, p, qos=1).wait_for_publish(10)
    store = aggregator.store
    assert wait_until(lambda: store.count_quarantine() == 5 and store.count_calls() == 1, timeout=15)
    reasons = {q["call_id"]: q["reason"] for q in store.list_quarantine()}
    assert reasons[None].startswith("bad status") or any(r.startswith("not JSON") for r in reasons.values())
    assert "agent_ratio" in reasons["bad-schema"]
    assert "too large" in reasons["huge-1"]
    assert "does not match" in reasons["wrong-dev"]
    assert all(len(r.splitlines()) == 1 for r in reasons.values())
    assert wait_until(lambda: len(got) >= 4)
    acks = {json.loads(p)["call_id"]: json.loads(p) for _, p, _ in got}
    for cid in ("bad-schema", "huge-1", "wrong-dev"):
        assert acks[cid]["status"] == "rejected" and acks[cid]["reason"]
    assert acks["good-1"] == {"call_id": "good-1", "status": "stored"}
    assert ("pacelight/dev-q/ack", ) == tuple({t for t, _, _ in got})
    # still running
    c.publish("pacelight/dev-q/calls", make_summary("good-2", device_id="dev-q").to_json(), qos=1)
    assert wait_until(lambda: store.count_calls() == 2)
    c.loop_stop()
    watcher.disconnect()


def _exercise_store(store: Store, make_summary) -> None:
    a = make_summary("s-1", "dev-a", started_at="2026-11-20T10:00:00Z")
    b = make_summary("s-2", "dev-b", started_at="2026-11-21T10:00:00Z")
    assert store.upsert_calls([a, b]) == {"s-1", "s-2"}
    assert store.upsert_calls([a]) == set()          # idempotent
    assert store.count_calls() == 2
    rows = store.list_calls()
    assert [r["call_id"] for r in rows] == ["s-2", "s-1"]
    assert rows[0]["summary"] == b.to_dict()
    assert rows[0]["agent_id"] is None and rows[0]["received_at"].endswith("Z")
    assert rows[0]["agent_pace_syl_s"] == pytest.approx(4.6) and rows[0]["cue_count"] == 1
    assert [r["call_id"] for r in store.list_calls(CallFilters(device_id="dev-a"))] == ["s-1"]
    from conftest import utc

    assert [r["call_id"] for r in store.list_calls(since=utc("2026-11-21T00:00:00Z"))] == ["s-2"]
    assert {d["device_id"]: d["calls_received"] for d in store.devices()} == {"dev-a": 1, "dev-b": 1}

    from pacelight_host.store import QuarantineRecord, StatusRecord

    store.write_batch(quarantined=[QuarantineRecord("pacelight/x/calls", "not JSON", b"\xff" * 10, utcnow(), "x")],
                      statuses=[StatusRecord("dev-a", "online", utcnow(), "1.2.3", utcnow())])
    q = store.list_quarantine()
    assert q[0]["reason"] == "not JSON" and q[0]["payload_bytes"] == 10
    dev = {d["device_id"]: d for d in store.devices()}["dev-a"]
    assert dev["state"] == "online" and dev["version"] == "1.2.3" and abs(dev["clock_skew_s"]) < 5


def test_sqlite_store(sqlite_store, make_summary):
    _exercise_store(sqlite_store, make_summary)


@pytest.mark.postgres
def test_postgres_store_and_ingest(postgres_url, mosquitto, make_summary):
    import psycopg
    from pacelight_host.ingest import Aggregator

    dbname = f"t{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {dbname}")
    url = postgres_url.rsplit("/", 1)[0] + "/" + dbname
    store = Store.open(url)
    try:
        _exercise_store(store, make_summary)
        agg = Aggregator(store, mosquitto.url, client_id="agg-pg").start()
        try:
            assert agg.wait_ready(10)
            c = _raw_publisher(mosquitto.port, mosquitto)
            for i in range(20):
                c.publish("pacelight/dev-p/calls", make_summary(f"pg-{i}", "dev-p").to_json(), qos=1)
            c.publish("pacelight/dev-p/calls", make_summary("pg-0", "dev-p").to_json(), qos=1)
            assert wait_until(lambda: store.count_calls() == 22 and agg.stats.duplicates >= 1, timeout=15)
            c.loop_stop()
        finally:
            agg.stop()
    finally:
        store.close()


def _aggregator_cmd(*args: str, data_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, PACELIGHT_DATA_DIR=str(data_dir))
    return subprocess.Popen([PYTHON, "-m", "pacelight.cli", "aggregator", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_aggregator_command_embedded_broker_send_calls_list_and_sigterm(tmp_path: Path):
    data = tmp_path / "data"
    port = free_port()
    proc = _aggregator_cmd("--listen", f"127.0.0.1:{port}", "--data-dir", str(data), data_dir=data)
    try:
        summary = tmp_path / "s.json"
        summary.write_text(json.dumps(summary_dict("cli-1", "dev-c")))
        env = dict(os.environ, PACELIGHT_DATA_DIR=str(data))
        r = subprocess.run([PYTHON, "-m", "pacelight.cli", "send", str(summary), "--broker",
                            f"mqtt://127.0.0.1:{port}", "--device-id", "dev-c", "--timeout", "30"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr + (proc.stderr.read() if proc.poll() is not None else "")
        conf = (data / "broker" / "mosquitto.conf").read_text()
        assert "max_queued_messages 100000" in conf and "autosave_interval 30" in conf
        db = f"sqlite:///{data / 'pacelight.sqlite'}"
        r = subprocess.run([PYTHON, "-m", "pacelight.cli", "calls", "list", "--db", db, "--json"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        listed = json.loads(r.stdout)
        assert [s["call_id"] for s in listed] == ["cli-1"]
        assert listed[0] == summary_dict("cli-1", "dev-c") | {"started_at": "2026-11-23T09:00:00Z"}
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
    assert rc == 0, proc.stderr.read()
    # the embedded broker stopped with it: the port is free again
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_http_without_api_module_says_dashboard_not_available(tmp_path: Path):
    try:
        import pacelight_host.api  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        pytest.skip("the dashboard module exists")
    proc = _aggregator_cmd("--listen", f"127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{free_port()}",
                           "--data-dir", str(tmp_path), data_dir=tmp_path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "dashboard not available" in err and len(err.strip().splitlines()) == 1


def test_two_replicas_share_the_load_without_duplicates(mosquitto, tmp_path: Path, make_summary):
    from pacelight_host.ingest import Aggregator

    store = Store.open(f"sqlite:///{tmp_path / 'shared.sqlite'}")
    aggs = [Aggregator(store, mosquitto.url, client_id=f"replica-{i}").start() for i in range(2)]
    try:
        assert all(a.wait_ready(10) for a in aggs)
        time.sleep(0.3)
        c = _raw_publisher(mosquitto.port, mosquitto)
        for i in range(200):
            c.publish(f"pacelight/dev-r{i % 4}/calls", make_summary(f"rep-{i}", f"dev-r{i % 4}").to_json(), qos=1)
        assert wait_until(lambda: store.count_calls() == 200, timeout=20)
        assert all(a.stats.stored_new > 0 for a in aggs)          # both replicas got work
        assert sum(a.stats.stored_new for a in aggs) == 200       # each message went to one
        c.loop_stop()
    finally:
        for a in aggs:
            a.stop()
        store.close()


def test_ack_is_sent_only_after_commit(mosquitto, tmp_path: Path, make_summary):
    """A failing database means no ack (the device keeps the summary and resends)."""
    from pacelight_host.ingest import Aggregator, IngestSettings

    store = Store.open(f"sqlite:///{tmp_path / 'a.sqlite'}")
    gate = threading.Event()
    real = store.write_batch

    def failing(*a, **kw):
        if not gate.is_set():
            raise RuntimeError("disk on fire")
        return real(*a, **kw)

    store.write_batch = failing  # type: ignore[method-assign]
    agg = Aggregator(store, mosquitto.url, client_id="agg-fail",
                     settings=IngestSettings(db_retries=2, db_backoff_max_s=0.2)).start()
    watcher, got = subscriber(mosquitto.url, ["pacelight/+/ack"])
    try:
        assert agg.wait_ready(10)
        c = _raw_publisher(mosquitto.port, mosquitto)
        c.publish("pacelight/dev-f/calls", make_summary("f-1", "dev-f").to_json(), qos=1)
        assert wait_until(lambda: agg.stats.db_failures >= 2, timeout=10)
        time.sleep(0.3)
        assert got == [] and store.count_calls() == 0
        gate.set()
        c.publish("pacelight/dev-f/calls", make_summary("f-1", "dev-f").to_json(), qos=1)  # device resend
        assert wait_until(lambda: len(got) == 1)
        assert store.count_calls() == 1
        c.loop_stop()
    finally:
        agg.stop()
        watcher.disconnect()
        store.close()
