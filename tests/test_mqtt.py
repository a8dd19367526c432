"""Device side: outbox, broker URLs, publisher (status/LWT, acks, config, resend), `pacelight send`."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import PYTHON, summary_dict
from pacelight.edge.device_config import parse_device_config
from pacelight.edge.mqtt_url import parse_broker_url, parse_listen
from pacelight.edge.outbox import Outbox
from pacelight.edge.publisher import Publisher, PublisherSettings, backoff_delay_s
from pacelight.errors import InputError

FAST = PublisherSettings(ack_timeout_s=2.0, backoff_min_s=0.1, backoff_max_s=1.0, pump_interval_s=0.05)


def wait_until(pred, timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def subscriber(url: str, topics: list[str]):
    """A plain paho subscriber collecting (topic, payload, retain)."""
    import paho.mqtt.client as mqtt

    got: list[tuple[str, bytes, bool]] = []
    ready = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, *a: (cl.subscribe([(t, 1) for t in topics]), None)[1]
    c.on_subscribe = lambda *a: ready.set()
    c.on_message = lambda cl, ud, m: got.append((m.topic, bytes(m.payload), bool(m.retain)))
    u = parse_broker_url(url)
    if u.username:
        c.username_pw_set(u.username, u.password)
    c.connect(u.host, u.port)
    c.loop_start()
    ready.wait(5)
    return c, got


def test_broker_url_parsing():
    u = parse_broker_url("mqtts://broker.example:8884")
    assert (u.host, u.port, u.tls) == ("broker.example", 8884, True)
    assert parse_broker_url("mqtt://127.0.0.1").port == 1883
    assert parse_broker_url("mqtts://h").port == 8883
    assert parse_broker_url("mqtt://user:p%40ss@h:1").password == "p@ss"
    for bad in ("http://h:1", "mqtt://", "mqtt://h:99999", "h:1883", "mqtt://h:1/x"):
        with pytest.raises(InputError):
            parse_broker_url(bad)
    assert parse_listen("0.0.0.0:1884") == ("0.0.0.0", 1884)
    assert parse_listen("[::1]:1885") == ("::1", 1885)


def test_backoff_is_bounded_and_jittered():
    delays = [backoff_delay_s(a, 0.5, 30.0) for a in range(40)]
    assert all(0.25 <= d <= 30.0 for d in delays)
    assert max(delays[-10:]) > 15.0
    assert len({round(backoff_delay_s(10, 0.5, 30.0), 6) for _ in range(20)}) > 1


def test_outbox_put_is_atomic_idempotent_and_deletes_only_on_ack(tmp_path: Path, make_summary):
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path)
    s = make_summary("call-a")
    assert box.put(s) == "call-a"
    assert box.put(s.to_dict()) == "call-a"          # idempotent on call_id
    assert box.put(make_summary("call-b").to_json()) == "call-b"
    assert [i.call_id for i in box.pending()] == ["call-a", "call-b"]
    box.mark_sent(["call-a"])
    assert [i.call_id for i in box.pending(sent_before=time.time() - 60)] == ["call-b"]
    box.close()
    # durable across a reopen (another process after a crash)
    box = Outbox(path)
    assert len(box) == 2
    assert box.ack("call-a") and not box.ack("call-a")
    assert box.reject("call-b", "invalid summary: x")
    assert len(box) == 0 and box.rejected() == [("call-b", "invalid summary: x")]
    assert box.counters()["acked"] == 1 and box.counters()["rejected"] == 1
    with pytest.raises(ValueError):
        box.put({"schema": "nope"})
    assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    box.close()


def test_outbox_bound_drops_oldest_and_counts(tmp_path: Path, make_summary):
    box = Outbox(tmp_path / "o.sqlite", max_items=3)
    for i in range(5):
        box.put(make_summary(f"call-{i}"))
    assert [i.call_id for i in box.pending()] == ["call-2", "call-3", "call-4"]
    assert box.counters()["dropped_overflow"] == 2
    box.close()


def test_publisher_end_to_end_status_ack_and_lwt(tmp_path: Path, mosquitto, aggregator, make_summary):
    watcher, got = subscriber(mosquitto.url, ["pacelight/dev-1/status", "pacelight/dev-1/ack"])
    box = Outbox(tmp_path / "o.sqlite")
    acks: list[tuple[str, str, str | None]] = []
    pub = Publisher("dev-1", mosquitto.url, box, settings=FAST, on_ack=lambda *a: acks.append(a)).start()
    try:
        assert pub.wait_connected(10)
        for i in range(5):
            pub.send(make_summary(f"c{i}"))
        assert wait_until(lambda: len(box) == 0), "outbox not drained by acks"
        assert sorted(a[0] for a in acks) == [f"c{i}" for i in range(5)]
        assert all(a[1] == "stored" for a in acks)
    finally:
        pub.stop()
    assert aggregator.store.count_calls() == 5
    states = [json.loads(p)["state"] for t, p, _ in got if t.endswith("/status")]
    assert states[:1] == ["online"] and states[-1] == "offline"
    status = json.loads(next(p for t, p, _ in got if t.endswith("/status")))
    assert set(status) == {"state", "device_id", "version", "ts"}
    assert wait_until(lambda: any(d["state"] == "offline" for d in aggregator.store.devices()))
    dev = aggregator.store.devices()[0]
    assert dev["device_id"] == "dev-1" and dev["calls_received"] == 5 and dev["version"]
    watcher.disconnect()

    # LWT: a device process killed without DISCONNECT is reported dead (retained).
    script = (f"import time; from pacelight.edge.outbox import Outbox; from pacelight.edge.publisher import "
              f"Publisher; p = Publisher('dev-lwt', {mosquitto.url!r}, Outbox({str(tmp_path / 'l.sqlite')!r}),"
              f" settings=__import__('pacelight.edge.publisher', fromlist=['x']).PublisherSettings(keepalive_s=2))"
              f".start(); p.wait_connected(10); print('up', flush=True); time.sleep(60)")
    proc = subprocess.Popen([PYTHON, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"up"
    assert wait_until(lambda: any(d["device_id"] == "dev-lwt" and d["state"] == "online"
                                  for d in aggregator.store.devices()))
    proc.kill()
    proc.wait()
    assert wait_until(lambda: any(d["device_id"] == "dev-lwt" and d["state"] == "dead"
                                  for d in aggregator.store.devices()), timeout=15)
    # retained: a late subscriber sees the last state
    late, got2 = subscriber(mosquitto.url, ["pacelight/dev-lwt/status"])
    assert wait_until(lambda: got2)
    assert json.loads(got2[0][1])["state"] == "dead" and got2[0][2]
    late.disconnect()


def test_unacked_summaries_wait_for_the_aggregator_and_are_resent(tmp_path: Path, mosquitto, sqlite_store,
                                                                 make_summary):
    """PUBACK alone never empties the outbox; once an aggregator appears, resends get acked."""
    from pacelight_host.ingest import Aggregator

    box = Outbox(tmp_path / "o.sqlite")
    pub = Publisher("dev-2", mosquitto.url, box, settings=FAST).start()
    try:
        assert pub.wait_connected(10)
        for i in range(3):
            pub.send(make_summary(f"r{i}", device_id="dev-2"))
        time.sleep(1.0)  # published and PUBACKed by the broker, but nobody acked
        assert len(box) == 3
        agg = Aggregator(sqlite_store, mosquitto.url, client_id="agg-late").start()
        try:
            assert agg.wait_ready(10)
            assert wait_until(lambda: len(box) == 0, timeout=15)
        finally:
            agg.stop()
        assert sqlite_store.count_calls() == 3
    finally:
        pub.stop()


def test_publisher_reconnects_after_broker_restart(tmp_path: Path, mosquitto, aggregator, make_summary):
    box = Outbox(tmp_path / "o.sqlite")
    pub = Publisher("dev-3", mosquitto.url, box, settings=FAST).start()
    try:
        assert pub.wait_connected(10)
        mosquitto.kill()
        assert wait_until(lambda: not pub.connected)
        pub.send(make_summary("while-down", device_id="dev-3"))
        time.sleep(0.5)
        mosquitto.start()
        assert wait_until(lambda: len(box) == 0, timeout=20)
        assert pub.reconnects >= 1
    finally:
        pub.stop()
    assert aggregator.store.get_call("while-down") is not None


def test_config_validated_and_handed_to_callback(tmp_path: Path, mosquitto):
    import paho.mqtt.client as mqtt

    c = mosquitto.auth(mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5))
    c.connect("127.0.0.1", mosquitto.port)
    c.loop_start()
    good = {"version": 3, "pace_target": {"min_syl_s": 3.5, "max_syl_s": 5.5}, "cues": {"overtalk_after_s": 2.0}}
    c.publish("pacelight/dev-4/config", json.dumps(good), qos=1, retain=True).wait_for_publish(5)
    got = []
    pub = Publisher("dev-4", mosquitto.url, Outbox(tmp_path / "o.sqlite"), settings=FAST,
                    on_config=got.append).start()
    try:
        assert wait_until(lambda: got)  # retained config on subscribe
        assert got[0].pace_target.max_syl_s == 5.5 and got[0].cues.overtalk_after_s == 2.0
        c.publish("pacelight/dev-4/config", json.dumps({"pace_target": {"min_syl_s": 3}, "bogus": 1}),
                  qos=1, retain=True).wait_for_publish(5)
        c.publish("pacelight/dev-4/config", b"not json", qos=1).wait_for_publish(5)
        time.sleep(0.5)
        assert len(got) == 1 and pub.config.version == 3  # invalid configs ignored, previous kept
    finally:
        pub.stop()
        c.publish("pacelight/dev-4/config", b"", qos=1, retain=True).wait_for_publish(5)
        c.loop_stop()
    with pytest.raises(ValueError, match="extra"):
        parse_device_config({"unknown_key": 1})


def _send(*args: str, env_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, PACELIGHT_DATA_DIR=str(env_dir))
    return subprocess.run([PYTHON, "-m", "pacelight.cli", "send", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_send_cli_acked_rejected_and_timeout(tmp_path: Path, mosquitto, aggregator):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(summary_dict("send-ok", "dev-5")))
    r = _send(str(good), "--broker", mosquitto.url, "--device-id", "dev-5", env_dir=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert aggregator.store.get_call("send-ok")["device_id"] == "dev-5"
    # sent again: idempotent, acked again, still one row
    r = _send(str(good), "--broker", mosquitto.url, "--device-id", "dev-5", "--outbox", str(tmp_path / "x.db"),
              env_dir=tmp_path)
    assert r.returncode == 0 and aggregator.store.count_calls() == 1
    # device id mismatch is refused locally
    r = _send(str(good), "--broker", mosquitto.url, "--device-id", "other", env_dir=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    # no aggregator behind this broker → timeout, one line, kept in the outbox
    lonely = tmp_path / "lonely.json"
    lonely.write_text(json.dumps(summary_dict("send-late", "dev-6")))
    from conftest import free_port

    r = _send(str(lonely), "--broker", f"mqtt://127.0.0.1:{free_port()}", "--device-id", "dev-6",
              "--timeout", "1.5", env_dir=tmp_path)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "could not connect" in r.stderr
    assert Outbox(tmp_path / "outbox-dev-6.sqlite").contains("send-late")
