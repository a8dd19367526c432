"""MQTT ingest: validate call summaries, store them in batches, ack after the commit.

* Calls arrive on the shared subscription ``$share/pacelight-aggregator/pacelight/+/calls``,
  so several aggregator replicas (same group) split the load. Status messages come on a
  normal subscription ``pacelight/+/status``: MQTT 5 never sends retained messages to shared
  subscriptions, and the registry needs the retained state after a restart (each replica
  applies every status; the upsert is idempotent).
* The paho thread only enqueues ``(topic, payload, received_at)``; the ``pacelight-ingest``
  thread validates with :func:`pacelight.summary.parse_summary`, writes one transaction per
  batch (calls + quarantine + statuses), and only then publishes the acks:
  ``{"call_id", "status": "stored"}`` or ``{"call_id", "status": "rejected", "reason"}``.
* Invalid messages (not JSON, wrong schema, over ``max_payload_bytes``, device id in the topic
  differs from the payload) go to the quarantine table with the reason — nothing is dropped
  silently — and are acked as rejected when a call_id can be read.
* If the database write fails the batch is retried with bounded backoff; if it still fails the
  batch is not acked (the devices resend it), so nothing acked is ever lost.
* Per-device rate limit (issue 10): a token bucket per device id of the topic
  (``device_rate_per_s`` refill, ``device_burst`` capacity — as large as a device's whole outbox
  bound, so a device flushing weeks of backlog after an outage is not throttled, while a
  runaway or hostile client cannot flood the database). Messages over the limit are neither
  stored nor acked — the device keeps them and resends after its ack timeout — counted in
  ``stats.rate_limited`` and logged (at most once a minute per device) with the reason.
  Payload size is bounded twice: mosquitto ``max_packet_size`` and ``max_payload_bytes`` here.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from pacelight.edge.mqtt_url import BrokerURL, parse_broker_url
from pacelight.edge.publisher import backoff_delay_s
from pacelight.summary import CallSummary, parse_summary

from pacelight_host.store import CallRecord, QuarantineRecord, StatusRecord, Store, utcnow

log = logging.getLogger(__name__)

SHARE_GROUP = "pacelight-aggregator"
CALLS_SUBSCRIPTION = f"$share/{SHARE_GROUP}/pacelight/+/calls"
STATUS_SUBSCRIPTION = "pacelight/+/status"
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
STATES = ("online", "offline", "dead")


@dataclass(frozen=True)
class IngestSettings:
    batch_max: int = 1000              # messages per transaction
    batch_wait_s: float = 0.05         # how long to gather a batch after the first message
    queue_max: int = 20_000            # in-memory backlog; the paho thread blocks when full
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    reconnect_min_s: float = 0.25
    reconnect_max_s: float = 5.0
    db_retries: int = 8
    db_backoff_max_s: float = 5.0
    device_rate_per_s: float = 50.0    # token refill per device (<= 0: no limit)
    device_burst: float = 10_000.0     # bucket capacity (= the device outbox bound)


@dataclass
class IngestStats:
    received: int = 0
    stored_new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    statuses: int = 0
    acks_sent: int = 0
    batches: int = 0
    db_failures: int = 0
    rate_limited: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "lock"}


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason_from_validation(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors()[:5]]
            return _one_line("invalid summary: " + "; ".join(parts))
        except Exception:  # fall back to the message
            pass
    return _one_line(str(exc))


def _call_id_of(obj) -> str | None:
    cid = obj.get("call_id") if isinstance(obj, dict) else None
    return cid if isinstance(cid, str) and 0 < len(cid) <= 256 else None


def _parse_ts(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


class Aggregator:
    """Ingests summaries and statuses from a broker into a :class:`Store`."""

    def __init__(self, store: Store, broker: str | BrokerURL, *, client_id: str,
                 username: str | None = None, password: str | None = None,
                 ca_file: str | None = None, cert_file: str | None = None, key_file: str | None = None,
                 settings: IngestSettings | None = None) -> None:
        self.store = store
        self.url = broker if isinstance(broker, BrokerURL) else parse_broker_url(broker)
        self.client_id = client_id
        self.username = username if username is not None else self.url.username
        self.password = password if password is not None else self.url.password
        self.ca_file, self.cert_file, self.key_file = ca_file, cert_file, key_file
        self.settings = settings or IngestSettings()
        self.stats = IngestStats()
        self._queue: queue.Queue = queue.Queue(maxsize=self.settings.queue_max)
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._worker: threading.Thread | None = None
        self._client = None
        self._last_ack = None
        self._buckets: dict[str, list[float]] = {}  # device -> [tokens, last refill (monotonic)]
        self._rate_logged: dict[str, float] = {}

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Aggregator:
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        s = self.settings
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.url.tls or self.ca_file or self.cert_file:
            client.tls_set(ca_certs=self.ca_file, certfile=self.cert_file, keyfile=self.key_file)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, int(s.reconnect_max_s)))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry_s
        client.connect_async(self.url.host, self.url.port, keepalive=s.keepalive_s, clean_start=False,
                             properties=props)
        self._client = client
        self._worker = threading.Thread(target=self._work, name="pacelight-ingest", daemon=True)
        self._worker.start()
        client.loop_start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        """True once connected and subscribed."""
        return self._subscribed.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop receiving, store and ack what was received, disconnect."""
        client = self._client
        if client is None:
            return
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout)
        last = self._last_ack
        if last is not None:
            try:  # let the final acks leave before disconnecting (devices resend otherwise)
                last.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
        client.disconnect()
        client.loop_stop()
        self._client = None

    # -- paho callbacks -------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the aggregator: %s", reason_code)
            return
        log.info("aggregator connected to %s (session present: %s)", self.url, flags.session_present)
        client.subscribe([(CALLS_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("broker refused the aggregator's subscriptions: %s", [str(rc) for rc in reason_codes])
            return
        self._subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._subscribed.clear()
        if not self._stop.is_set():
            log.warning("aggregator disconnected from %s: %s (reconnecting)", self.url, reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        item = (msg.topic, bytes(msg.payload), utcnow())
        while True:
            try:
                self._queue.put(item, timeout=1.0)
                return
            except queue.Full:
                if self._stop.is_set():
                    return  # not acked: the device resends it
                log.warning("ingest backlog full (%d); holding the network thread", self.settings.queue_max)

    # -- worker ---------------------------------------------------------------------------
    def _work(self) -> None:
        s = self.settings
        while True:
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            batch = [first]
            deadline = time.monotonic() + s.batch_wait_s
            while len(batch) < s.batch_max:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=max(0.0, remaining)) if remaining > 0
                                 else self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self.process_batch(batch)
            except Exception:
                log.exception("ingest batch of %d failed; not acked (devices will resend)", len(batch))

    def _allow(self, device: str, now: float) -> bool:
        """Token bucket of ``device`` (only the ingest thread calls this)."""
        s = self.settings
        if s.device_rate_per_s <= 0:
            return True
        b = self._buckets.get(device)
        if b is None:
            if len(self._buckets) >= 100_000:  # bound memory: forget full (idle) buckets
                self._buckets = {k: v for k, v in self._buckets.items()
                                 if v[0] + (now - v[1]) * s.device_rate_per_s < s.device_burst}
            b = self._buckets[device] = [s.device_burst, now]
        b[0] = min(s.device_burst, b[0] + (now - b[1]) * s.device_rate_per_s)
        b[1] = now
        if b[0] >= 1.0:
            b[0] -= 1.0
            return True
        return False

    def _rate_limit(self, batch: list[tuple[str, bytes, datetime]]) -> list[tuple[str, bytes, datetime]]:
        if self.settings.device_rate_per_s <= 0:
            return batch
        now = time.monotonic()
        kept, limited = [], {}
        for item in batch:
            parts = item[0].split("/")
            device = parts[1] if len(parts) == 3 else ""
            if self._allow(device, now):
                kept.append(item)
            else:
                limited[device] = limited.get(device, 0) + 1
        if limited:
            with self.stats.lock:
                self.stats.rate_limited += sum(limited.values())
            for device, n in limited.items():
                if now - self._rate_logged.get(device, -1e9) >= 60.0:
                    self._rate_logged[device] = now
                    log.warning("device %s over its rate limit (%.0f/s, burst %.0f): %d message(s) not "
                                "stored nor acked (the device resends them later)", device,
                                self.settings.device_rate_per_s, self.settings.device_burst, n)
        return kept

    def process_batch(self, batch: list[tuple[str, bytes, datetime]]) -> None:
        batch = self._rate_limit(batch)
        if not batch:
            return
        calls: list[CallRecord] = []
        quarantined: list[QuarantineRecord] = []
        statuses: list[StatusRecord] = []
        rejected_acks: list[tuple[str, str, str]] = []  # (device, call_id, reason)
        for topic, payload, received_at in batch:
            parts = topic.split("/")
            if len(parts) != 3 or parts[0] != "pacelight":
                quarantined.append(QuarantineRecord(topic, "unexpected topic", payload, received_at))
                continue
            device, kind = parts[1], parts[2]
            if kind == "calls":
                rec, q, cid = self._validate_call(topic, device, payload, received_at)
                if rec is not None:
                    calls.append(rec)
                else:
                    quarantined.append(q)
                    if cid is not None:
                        rejected_acks.append((device, cid, q.reason))
            elif kind == "status":
                st, q = self._validate_status(topic, device, payload, received_at)
                if st is not None:
                    statuses.append(st)
                elif q is not None:
                    quarantined.append(q)
            else:
                quarantined.append(QuarantineRecord(topic, "unexpected topic", payload, received_at, device))
        new = self._write(calls, quarantined, statuses)
        if new is None:
            return
        with self.stats.lock:
            st = self.stats
            st.received += len(batch)
            st.stored_new += len(new)
            st.duplicates += len(calls) - len(new)
            st.quarantined += len(quarantined)
            st.statuses += len(statuses)
            st.batches += 1
        # Acks only now, after the commit.
        client = self._client
        if client is None:
            return
        sent = 0
        for rec in calls:
            cid = rec.summary.call_id
            self._last_ack = client.publish(f"pacelight/{rec.summary.device_id}/ack",
                                            json.dumps({"call_id": cid, "status": "stored"}), qos=1)
            sent += 1
        for device, cid, reason in rejected_acks:
            self._last_ack = client.publish(
                f"pacelight/{device}/ack", json.dumps({"call_id": cid, "status": "rejected", "reason": reason}),
                qos=1)
            sent += 1
        with self.stats.lock:
            self.stats.acks_sent += sent

    def _write(self, calls, quarantined, statuses) -> set[str] | None:
        s = self.settings
        for attempt in range(s.db_retries):
            try:
                return self.store.write_batch(calls, quarantined, statuses)
            except Exception as exc:
                with self.stats.lock:
                    self.stats.db_failures += 1
                delay = backoff_delay_s(attempt, 0.1, s.db_backoff_max_s)
                log.warning("database write failed (%s); retry %d/%d in %.1f s", _one_line(str(exc), 200),
                            attempt + 1, s.db_retries, delay)
                # a broken connection is replaced on the next attempt
                self.store.close()
                if self._stop.wait(delay) and attempt > 1:
                    break
        log.error("giving up on a batch of %d calls (not acked; devices will resend)", len(calls))
        return None

    def _validate_call(self, topic: str, device: str, payload: bytes, received_at: datetime
                       ) -> tuple[CallRecord | None, QuarantineRecord | None, str | None]:
        limit = self.settings.max_payload_bytes
        if len(payload) <= limit:
            # Fast path: pydantic parses and validates the JSON in one go (same CallSummary model
            # as parse_summary); the validated original text is what gets stored.
            try:
                summary = CallSummary.model_validate_json(payload)
            except ValueError:
                pass
            else:
                if summary.device_id == device:
                    return CallRecord(summary, received_at, payload.decode("utf-8")), None, summary.call_id
        obj = None
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            reason = f"not JSON: {_one_line(str(exc), 200)}"
        else:
            if len(payload) > limit:
                reason = f"payload too large: {len(payload)} bytes > {limit}"
            else:
                try:
                    summary = parse_summary(obj)
                except ValueError as exc:
                    reason = _reason_from_validation(exc)
                else:
                    reason = (f"device_id {summary.device_id!r} in the payload does not match "
                              f"{device!r} in the topic")
        if len(payload) > limit and obj is None:
            reason = f"payload too large: {len(payload)} bytes > {limit}; {reason}"
        cid = _call_id_of(obj)
        log.warning("quarantined %s (call_id %s): %s", topic, cid, reason)
        return None, QuarantineRecord(topic, reason, payload, received_at, device, cid), cid

    def _validate_status(self, topic: str, device: str, payload: bytes, received_at: datetime
                         ) -> tuple[StatusRecord | None, QuarantineRecord | None]:
        if not payload:
            return None, None  # retained status cleared: nothing to record
        try:
            obj = json.loads(payload)
            if not isinstance(obj, dict):
                raise ValueError("status must be a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            return None, QuarantineRecord(topic, f"bad status: {_one_line(str(exc), 200)}", payload,
                                          received_at, device)
        state = obj.get("state")
        if state not in STATES:
            return None, QuarantineRecord(topic, f"bad status: state {state!r} not in {STATES}", payload,
                                          received_at, device)
        if obj.get("device_id") not in (None, device):
            return None, QuarantineRecord(topic, "bad status: device_id does not match the topic", payload,
                                          received_at, device)
        version = obj.get("version")
        return StatusRecord(device, state, received_at, str(version)[:100] if version is not None else None,
                            _parse_ts(obj.get("ts"))), None
