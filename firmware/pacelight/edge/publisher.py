"""MQTT publisher of the device: sends the outbox to the host and applies its acks/config.

paho-mqtt 2.x, MQTT 5, QoS 1, client id = device id (CONTRACT.md section 4):

* ``pacelight/<id>/status`` retained: ``online`` after connect, ``offline`` on clean shutdown,
  ``dead`` as the last will (``{"state", "device_id", "version", "ts"}``).
* ``pacelight/<id>/calls``: each unacked outbox summary; resent after every reconnect and
  after ``ack_timeout_s`` without an ack (the host stores idempotently on ``call_id``).
* ``pacelight/<id>/ack``: ``{"call_id", "status": "stored"|"rejected", "reason"?}``; a missing
  status means stored. Only this removes a summary from the outbox (never PUBACK).
* ``pacelight/<id>/config`` retained: validated with :class:`DeviceConfig` (unknown keys
  rejected) and handed to ``on_config``; invalid configs are logged and ignored.

One named thread runs the network loop; :meth:`Publisher.stop` sets the stop event, publishes
``offline`` and disconnects. Reconnects use exponential backoff with jitter, bounded by
``backoff_max_s``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pacelight import __version__
from pacelight.edge.device_config import DeviceConfig, parse_device_config
from pacelight.edge.mqtt_url import BrokerURL, parse_broker_url
from pacelight.edge.outbox import Outbox

log = logging.getLogger(__name__)

AckCallback = Callable[[str, str, "str | None"], None]
ConfigCallback = Callable[[DeviceConfig], None]


def topic(device_id: str, kind: str) -> str:
    return f"pacelight/{device_id}/{kind}"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_payload(device_id: str, state: str, version: str = __version__) -> bytes:
    return json.dumps({"state": state, "device_id": device_id, "version": version,
                       "ts": utc_now_iso()}).encode()


def backoff_delay_s(attempt: int, min_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped at ``max_s``."""
    base = min(max_s, min_s * (2.0 ** min(attempt, 30)))
    return base / 2.0 + (rng or random).uniform(0.0, base / 2.0)


@dataclass(frozen=True)
class PublisherSettings:
    keepalive_s: int = 30
    ack_timeout_s: float = 10.0          # resend a summary after this long without an ack
    backoff_min_s: float = 0.5
    backoff_max_s: float = 60.0
    connack_timeout_s: float = 10.0
    batch_size: int = 100                # summaries published per pump tick
    pump_interval_s: float = 0.2
    shutdown_timeout_s: float = 3.0


class Publisher:
    """Background MQTT client of one device."""

    def __init__(
        self,
        device_id: str,
        broker: str | BrokerURL,
        outbox: Outbox,
        *,
        version: str = __version__,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        on_ack: AckCallback | None = None,
        on_config: ConfigCallback | None = None,
        settings: PublisherSettings | None = None,
    ) -> None:
        self.device_id = device_id
        self.url = broker if isinstance(broker, BrokerURL) else parse_broker_url(broker)
        self.outbox = outbox
        self.version = version
        self.username = username if username is not None else self.url.username
        self.password = password if password is not None else self.url.password
        self.ca_file, self.cert_file, self.key_file = ca_file, cert_file, key_file
        self.on_ack = on_ack
        self.on_config = on_config
        self.settings = settings or PublisherSettings()
        self.config: DeviceConfig | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._connack_failed: str | None = None
        self._thread: threading.Thread | None = None
        self._client = None
        self.reconnects = 0
        self.connections = 0  # successful CONNACKs

    # -- public API -----------------------------------------------------------------------
    def start(self) -> Publisher:
        if self._thread is not None:
            raise RuntimeError("publisher already started")
        self._client = self._make_client()
        self._thread = threading.Thread(target=self._run, name=f"pacelight-publisher-{self.device_id}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Publish ``offline``, disconnect and join the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.settings.shutdown_timeout_s + 5.0)

    def notify(self) -> None:
        """Something was put into the outbox: send it now instead of at the next tick."""
        self._wake.set()

    def send(self, summary) -> str:
        """Queue a summary durably and wake the sender; returns the call_id."""
        call_id = self.outbox.put(summary)
        self.notify()
        return call_id

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # -- client setup ---------------------------------------------------------------------
    def _make_client(self):
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.device_id,
                             protocol=mqtt.MQTTv5)
        client.will_set(topic(self.device_id, "status"), status_payload(self.device_id, "dead", self.version),
                        qos=1, retain=True)
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.url.tls or self.ca_file or self.cert_file:
            client.tls_set(ca_certs=self.ca_file, certfile=self.cert_file, keyfile=self.key_file)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # -- paho callbacks (run on the publisher thread) -------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._connack_failed = str(reason_code)
            log.warning("%s: broker refused connection: %s", self.device_id, reason_code)
            return
        log.info("%s: connected to %s", self.device_id, self.url)
        client.subscribe([(topic(self.device_id, "ack"), 1), (topic(self.device_id, "config"), 1)])
        client.publish(topic(self.device_id, "status"), status_payload(self.device_id, "online", self.version),
                       qos=1, retain=True)
        self.connections += 1
        self.outbox.reset_sent()  # everything unacked is due again on this connection
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.info("%s: disconnected: %s", self.device_id, reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        if kind == "ack":
            self._handle_ack(msg.payload)
        elif kind == "config":
            self._handle_config(msg.payload)

    def _handle_ack(self, payload: bytes) -> None:
        try:
            ack = json.loads(payload)
            call_id = ack["call_id"]
            status = ack.get("status", "stored")
            if not isinstance(call_id, str) or status not in ("stored", "rejected"):
                raise ValueError("bad call_id or status")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s: ignoring malformed ack %r: %s", self.device_id, payload[:200], exc)
            return
        reason = ack.get("reason")
        if status == "stored":
            self.outbox.ack(call_id)
        else:
            self.outbox.reject(call_id, str(reason or "rejected"))
        if self.on_ack is not None:
            try:
                self.on_ack(call_id, status, reason)
            except Exception:  # a callback bug must not kill the network thread
                log.exception("on_ack callback failed")

    def _handle_config(self, payload: bytes) -> None:
        try:
            cfg = parse_device_config(payload) if payload else DeviceConfig()
        except ValueError as exc:
            log.warning("%s: invalid config ignored: %s", self.device_id, str(exc).replace("\n", "; "))
            return
        self.config = cfg
        if self.on_config is not None:
            try:
                self.on_config(cfg)
            except Exception:
                log.exception("on_config callback failed")

    # -- thread ---------------------------------------------------------------------------
    def _pump(self) -> None:
        """Publish due summaries (never sent on this connection, or ack timed out)."""
        s = self.settings
        due = self.outbox.pending(limit=s.batch_size, sent_before=time.time() - s.ack_timeout_s)
        if not due:
            return
        t = topic(self.device_id, "calls")
        for item in due:
            self._client.publish(t, item.payload.encode(), qos=1)
        self.outbox.mark_sent([i.call_id for i in due])
        log.debug("%s: published %d summaries", self.device_id, len(due))

    def _run(self) -> None:
        import paho.mqtt.client as mqtt

        s = self.settings
        attempt = 0
        client = self._client
        while not self._stop.is_set():
            self._connack_failed = None
            try:
                client.connect(self.url.host, self.url.port, keepalive=s.keepalive_s, clean_start=True)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                delay = backoff_delay_s(attempt, s.backoff_min_s, s.backoff_max_s)
                attempt += 1
                log.info("%s: connect to %s failed (%s); retry in %.1f s", self.device_id, self.url, exc, delay)
                self._stop.wait(delay)
                continue
            started = time.monotonic()
            last_pump = 0.0
            while not self._stop.is_set():
                rc = client.loop(timeout=0.05)
                if rc != mqtt.MQTT_ERR_SUCCESS or self._connack_failed:
                    break
                if self._connected.is_set():
                    attempt = 0
                    now = time.monotonic()
                    if self._wake.is_set() or now - last_pump >= s.pump_interval_s:
                        self._wake.clear()
                        last_pump = now
                        try:
                            self._pump()
                        except Exception:
                            log.exception("%s: publishing from the outbox failed", self.device_id)
                elif time.monotonic() - started > s.connack_timeout_s:
                    log.info("%s: no CONNACK within %.0f s", self.device_id, s.connack_timeout_s)
                    break
            if self._stop.is_set():
                break
            self._connected.clear()
            self.reconnects += 1
            try:
                client.disconnect()
            except Exception:  # socket already gone
                pass
            delay = backoff_delay_s(attempt, s.backoff_min_s, s.backoff_max_s)
            attempt += 1
            self._stop.wait(delay)
        self._shutdown(client)

    def _shutdown(self, client) -> None:
        import paho.mqtt.client as mqtt

        if self._connected.is_set():
            info = client.publish(topic(self.device_id, "status"),
                                  status_payload(self.device_id, "offline", self.version), qos=1, retain=True)
            deadline = time.monotonic() + self.settings.shutdown_timeout_s
            while not info.is_published() and time.monotonic() < deadline:
                if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                    break
            client.disconnect()
            try:
                client.loop(timeout=0.05)
            except Exception:
                pass
        self._connected.clear()
