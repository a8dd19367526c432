"""Fleet security against the real mosquitto: identities, ACLs, TLS, revocation, provision CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import PYTHON, free_port, summary_dict
from test_mqtt import wait_until


class Conn:
    """A paho MQTT 5 client recording CONNACK, messages and PUBACK reason codes."""

    def __init__(self, port: int, user: str | None = None, password: str | None = None, *,
                 ca: str | Path | None = None, client_id: str = "", host: str = "127.0.0.1") -> None:
        import paho.mqtt.client as mqtt

        self.connack: str | None = None
        self.error: Exception | None = None
        self.msgs: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, int] = {}
        self.disconnected = threading.Event()
        self.subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if user is not None:
            c.username_pw_set(user, password)
        if ca is not None:
            c.tls_set(ca_certs=str(ca))
        c.on_connect = lambda cl, u, f, rc, p: setattr(self, "connack", str(rc))
        c.on_disconnect = lambda *a: self.disconnected.set()
        c.on_message = lambda cl, u, m: self.msgs.append((m.topic, bytes(m.payload)))
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_publish = lambda cl, u, mid, rc, p: self.pubacks.__setitem__(mid, rc.value)
        self.c = c
        try:
            c.connect(host, port, keepalive=10)
        except (OSError, ssl.SSLError) as exc:
            self.error = exc
            return
        c.loop_start()
        wait_until(lambda: self.connack is not None or self.disconnected.is_set(), timeout=5)

    @property
    def ok(self) -> bool:
        return self.connack == "Success" and not self.disconnected.is_set()

    def sub(self, *topics: str) -> None:
        self.subscribed.clear()
        self.c.subscribe([(t, 1) for t in topics])
        assert self.subscribed.wait(5)

    def pub(self, topic: str, payload: bytes | str, retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK reason code (0 = accepted — 0x10 "no matching
        subscribers" counts as accepted —, 0x87 = not authorized)."""
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)
        assert wait_until(lambda: info.mid in self.pubacks, timeout=5)
        rc = self.pubacks[info.mid]
        return 0 if rc == 0x10 else rc

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def secure_broker(mosquitto_factory):
    b = mosquitto_factory(tls=True)
    pw = {d: b.provision(d) for d in ("dev-a", "dev-b")}
    time.sleep(0.2)  # SIGHUP handled
    return b, pw


def test_password_hash_is_mosquitto_compatible(tmp_path: Path):
    from pacelight_host.security import hash_password, verify_password

    f = tmp_path / "pw"
    f.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(f), "u", "s3cret"], check=True, capture_output=True)
    theirs = f.read_text().strip().split(":", 1)[1]
    assert theirs.startswith("$7$") and verify_password("s3cret", theirs) and not verify_password("x", theirs)
    ours = hash_password("s3cret")
    assert ours.startswith("$7$101$") and verify_password("s3cret", ours)


def test_anonymous_wrong_password_and_wrong_ca_are_refused(secure_broker, tmp_path: Path):
    from pacelight_host.security import FleetSecurity

    b, pw = secure_broker
    ca = b.security.ca_cert
    for port, kw in ((b.port, {}), (b.tls_port, {"ca": ca})):
        anon = Conn(port, **kw)
        assert not anon.ok and anon.connack == "Not authorized"
        wrong = Conn(port, "dev-a", "not-the-password", **kw)
        assert not wrong.ok and wrong.connack == "Not authorized"
        other = Conn(port, "dev-a", pw["dev-b"], **kw)  # B's password does not open A
        assert not other.ok
    good = Conn(b.tls_port, "dev-a", pw["dev-a"], ca=ca, host="localhost")
    assert good.ok
    good.close()
    # a CA that did not sign the broker's certificate: the TLS handshake fails
    rogue = FleetSecurity(tmp_path / "rogue").ensure_ca()
    bad = Conn(b.tls_port, "dev-a", pw["dev-a"], ca=rogue, host="localhost")
    assert bad.error is not None and isinstance(bad.error, ssl.SSLError) and not bad.ok
    # plain MQTT against the TLS port gets nowhere either
    plain = Conn(b.tls_port, "dev-a", pw["dev-a"])
    assert not plain.ok


def test_device_cannot_publish_as_another_nor_read_its_acks_or_config(secure_broker, tmp_path: Path, make_summary):
    from pacelight_host.ingest import Aggregator
    from pacelight_host.store import Store

    b, pw = secure_broker
    ca = b.security.ca_cert
    # host side: the aggregator with its own role, and a retained config for each device
    store = Store.open(f"sqlite:///{tmp_path / 'h.sqlite'}")
    cred = b.credential("aggregator")
    agg = Aggregator(store, b.plain_url, client_id="agg-sec", username=cred.username,
                     password=cred.password).start()
    host = Conn(b.port, cred.username, cred.password)
    try:
        assert agg.wait_ready(10)
        for d in ("dev-a", "dev-b"):
            assert host.pub(f"pacelight/{d}/config", json.dumps({"version": 7}), retain=True) == 0
        a = Conn(b.tls_port, "dev-a", pw["dev-a"], ca=ca, host="localhost", client_id="dev-a")
        bb = Conn(b.tls_port, "dev-b", pw["dev-b"], ca=ca, host="localhost", client_id="dev-b")
        assert a.ok and bb.ok
        a.sub("pacelight/dev-a/ack", "pacelight/dev-a/config", "pacelight/dev-b/ack", "pacelight/dev-b/config",
              "pacelight/+/calls")
        bb.sub("pacelight/dev-b/ack", "pacelight/dev-b/config")
        assert wait_until(lambda: ("pacelight/dev-b/config", b'{"version": 7}') in bb.msgs)
        # A's own summary is accepted, stored and acked to A
        assert a.pub("pacelight/dev-a/calls", make_summary("sec-a1", "dev-a").to_json()) == 0
        # A publishing on B's topic: refused by the broker (MQTT 5 reason 0x87), never stored
        assert a.pub("pacelight/dev-b/calls", make_summary("sec-b1", "dev-b").to_json()) == 0x87
        assert a.pub("pacelight/dev-b/status", json.dumps({"state": "dead"}), retain=True) == 0x87
        # A cannot post acks or configs (host-only topics), not even its own
        assert a.pub("pacelight/dev-a/ack", json.dumps({"call_id": "x"})) == 0x87
        assert a.pub("pacelight/dev-b/config", json.dumps({"version": 666}), retain=True) == 0x87
        # payload claiming to be B on A's topic: quarantined by the host
        assert a.pub("pacelight/dev-a/calls", make_summary("sec-spoof", "dev-b").to_json()) == 0
        # B's own summary: B gets its ack, A sees neither B's ack nor B's config nor B's calls
        assert bb.pub("pacelight/dev-b/calls", make_summary("sec-b2", "dev-b").to_json()) == 0
        assert wait_until(lambda: store.get_call("sec-b2") is not None and store.get_call("sec-a1") is not None)
        assert wait_until(lambda: any(t == "pacelight/dev-b/ack" for t, _ in bb.msgs))
        time.sleep(0.5)
        a_topics = {t for t, _ in a.msgs}
        assert a_topics == {"pacelight/dev-a/ack", "pacelight/dev-a/config"}, a_topics
        assert store.get_call("sec-b1") is None and store.get_call("sec-spoof") is None
        assert agg.stats.quarantined >= 1
        # the aggregator role cannot publish as a device
        assert host.pub("pacelight/dev-a/calls", make_summary("sec-h", "dev-a").to_json()) == 0x87
        a.close()
        bb.close()
    finally:
        host.close()
        agg.stop()
        store.close()


def test_revoked_device_is_disconnected_and_refused(secure_broker):
    b, pw = secure_broker
    ca = b.security.ca_cert
    a = Conn(b.tls_port, "dev-a", pw["dev-a"], ca=ca, host="localhost", client_id="dev-a")
    assert a.ok
    b.revoke("dev-a")
    assert a.disconnected.wait(5), "revoked device still connected after the reload"
    again = Conn(b.tls_port, "dev-a", pw["dev-a"], ca=ca, host="localhost")
    assert not again.ok and again.connack == "Not authorized"
    other = Conn(b.tls_port, "dev-b", pw["dev-b"], ca=ca, host="localhost")
    assert other.ok  # the rest of the fleet is unaffected
    other.close()
    assert "dev-a" in b.security.revoked() and "dev-a" not in b.security.users()
    passwd = b.security.passwd_path
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600 and "dev-a:" not in passwd.read_text()


def _cli(*args: str, data: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PACELIGHT_DATA_DIR=str(data))
    return subprocess.run([PYTHON, "-m", "pacelight.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_provision_bundle_send_over_tls_then_revoke(tmp_path: Path):
    """IT flow: aggregator with a TLS listener, provision, send with the bundle, revoke."""
    from pacelight.edge.settings import load_settings

    data = tmp_path / "host"
    port, tls_port = free_port(), free_port()
    env = dict(os.environ, PACELIGHT_DATA_DIR=str(data))
    agg = subprocess.Popen([PYTHON, "-m", "pacelight.cli", "aggregator", "--listen", f"127.0.0.1:{port}",
                            "--tls-listen", f"127.0.0.1:{tls_port}", "--data-dir", str(data)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: (data / "broker" / "mosquitto.pid").exists(), timeout=20)
        bundle = tmp_path / "bundle-desk-1"
        r = _cli("provision", "desk-1", "--out", str(bundle), "--host", "localhost", "--port", str(tls_port),
                 data=data)
        assert r.returncode == 0, r.stderr
        assert "reloaded" in r.stdout
        assert sorted(p.name for p in bundle.iterdir()) == ["ca.crt", "config.json", "config.toml",
                                                             "credentials.json", "password"]
        for secret in ("password", "credentials.json"):
            assert stat.S_IMODE((bundle / secret).stat().st_mode) == 0o600
        assert json.loads((bundle / "config.json").read_text()) == {"broker": f"mqtts://localhost:{tls_port}",
                                                                   "device_id": "desk-1"}
        settings = load_settings(bundle / "config.toml")  # a valid device config
        assert settings.mqtt.broker == f"mqtts://localhost:{tls_port}" and settings.mqtt.username == "desk-1"
        assert settings.mqtt.password_file == "/etc/pacelight/password"
        pw = (bundle / "password").read_text().strip()
        assert pw not in (data / "security" / "passwd").read_text()  # only the hash is kept

        summary = tmp_path / "s.json"
        summary.write_text(json.dumps(summary_dict("tls-1", "desk-1")))
        r = _cli("send", str(summary), "--bundle", str(bundle), "--device-id", "desk-1", "--timeout", "30",
                 "--outbox", str(tmp_path / "ob1.sqlite"), data=tmp_path / "device")
        assert r.returncode == 0, r.stderr
        # the bundle cannot be used for another device id
        other = tmp_path / "o.json"
        other.write_text(json.dumps(summary_dict("tls-2", "desk-2")))
        r = _cli("send", str(other), "--bundle", str(bundle), "--device-id", "desk-2", "--timeout", "4",
                 "--outbox", str(tmp_path / "ob2.sqlite"), data=tmp_path / "device")
        assert r.returncode == 1
        # refuse reusing an existing, non-empty bundle dir; reserved/bad ids
        assert _cli("provision", "desk-1", "--out", str(bundle), data=data).returncode == 2
        assert _cli("provision", "pacelight-aggregator", "--out", str(tmp_path / "x"), data=data).returncode == 2
        assert _cli("provision", "a/b#", "--out", str(tmp_path / "y"), data=data).returncode == 2

        r = _cli("revoke", "desk-1", "--json", data=data)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"device_id": "desk-1", "was_provisioned": True, "broker_reloaded": True}
        summary.write_text(json.dumps(summary_dict("tls-3", "desk-1")))
        r = _cli("send", str(summary), "--bundle", str(bundle), "--device-id", "desk-1", "--timeout", "3",
                 "--outbox", str(tmp_path / "ob3.sqlite"), data=tmp_path / "device")
        assert r.returncode == 1 and "could not connect" in r.stderr
        # a revoked id is not silently re-provisioned
        r = _cli("provision", "desk-1", "--out", str(tmp_path / "b2"), data=data)
        assert r.returncode == 2 and "revoked" in r.stderr
        # local tools (no bundle) use the aggregator's local credential on the loopback listener
        r = _cli("send", str(other), "--broker", f"mqtt://127.0.0.1:{port}", "--device-id", "desk-2",
                 "--timeout", "30", "--outbox", str(tmp_path / "ob4.sqlite"), data=data)
        assert r.returncode == 0, r.stderr
        conf = (data / "broker" / "mosquitto.conf").read_text()
        assert "allow_anonymous false" in conf and "allow_anonymous true" not in conf
        assert f"listener {tls_port} 127.0.0.1" in conf and "password_file" in conf and "acl_file" in conf
        for name in ("aggregator.json", "local-tools.json", "ca.key", "server.key", "passwd", "acl"):
            assert stat.S_IMODE((data / "security" / name).stat().st_mode) == 0o600, name
    finally:
        agg.send_signal(signal.SIGTERM)
        rc = agg.wait(20)
    assert rc == 0, agg.stderr.read()


def test_rate_limit_delays_a_flood_without_losing_summaries(mosquitto, tmp_path: Path, make_summary):
    """Over its token bucket a device's summaries are neither stored nor acked; its outbox resends them."""
    from pacelight.edge.outbox import Outbox
    from pacelight.edge.publisher import Publisher, PublisherSettings
    from pacelight_host.ingest import Aggregator, IngestSettings
    from pacelight_host.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'h.sqlite'}")
    agg = Aggregator(store, mosquitto.url, client_id="agg-rate",
                     settings=IngestSettings(device_rate_per_s=20.0, device_burst=10.0)).start()
    box = Outbox(tmp_path / "o.sqlite")
    for i in range(40):
        box.put(make_summary(f"rate-{i:03d}", "dev-r"))
    pub = Publisher("dev-r", mosquitto.url, box, settings=PublisherSettings(
        ack_timeout_s=0.5, backoff_min_s=0.1, backoff_max_s=1.0, pump_interval_s=0.05)).start()
    try:
        assert agg.wait_ready(10)
        assert wait_until(lambda: len(box) == 0, timeout=30)
        assert store.count_calls() == 40                      # all delivered in the end
        assert agg.stats.rate_limited >= 20                   # the first burst was cut at 10
        assert box.counters()["rejected"] == 0
    finally:
        pub.stop()
        agg.stop()
        store.close()
        box.close()


def test_oversized_payloads_are_refused_or_quarantined(mosquitto, aggregator, make_summary):
    from pacelight_host.broker import MAX_PACKET_BYTES
    from pacelight_host.ingest import MAX_PAYLOAD_BYTES

    assert MAX_PAYLOAD_BYTES < MAX_PACKET_BYTES
    c = Conn(mosquitto.port, *_local(mosquitto))
    # above the host limit, below the broker's: reaches the host, quarantined with the reason
    big = make_summary("big-1", "dev-big").to_dict()
    big["model"]["pipeline"] = "x" * (MAX_PAYLOAD_BYTES + 10)
    assert c.pub("pacelight/dev-big/calls", json.dumps(big)) == 0
    assert wait_until(lambda: aggregator.stats.quarantined >= 1, timeout=15)
    assert aggregator.store.get_call("big-1") is None
    # above the broker's max_packet_size: the broker drops the client, nothing arrives
    c.c.publish("pacelight/dev-big/calls", b"{" + b" " * MAX_PACKET_BYTES + b"}", qos=1)
    assert c.disconnected.wait(15)
    c.c.loop_stop()


def _local(broker) -> tuple[str, str]:
    cred = broker.credential("local")
    return cred.username, cred.password


def test_readme_privacy_section_lists_exactly_the_summary_fields():
    from pacelight.summary import CallSummary

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Privacy", 1)[1].split("\n## ", 1)[0]
    fields = {f.alias or name for name, f in CallSummary.model_fields.items()}
    listed = set(re.findall(r"`([a-z_]+)`", section.split("Besides summaries", 1)[0]))
    assert fields <= listed, fields - listed
    assert "transcript" in section and "audio" in section
