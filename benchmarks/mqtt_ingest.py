"""MQTT ingest benchmark: summaries/s into SQLite, and 1,000 concurrent device connections.

1. Ingest: ``pacelight aggregator`` (embedded mosquitto, SQLite) as a subprocess; the benchmark
   publishes ``--summaries`` valid summaries (QoS 1, ~1 KB each) from several paho clients and
   measures how fast they are stored (rows in the database over time). Target ≥ 2,000/s.
2. Connections: a bounded asyncio load generator (one thread, raw MQTT 5 packets) opens
   ``--connections`` device connections to the embedded broker, keeps them all open and has
   each publish a summary at a steady total rate; every published summary must be stored.
   The broker's resident memory is read from /proc.

``.venv/bin/python -m benchmarks.mqtt_ingest [--summaries N] [--connections N] [--no-record]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

INGEST_TARGET_PER_S = 2000.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _template() -> dict:
    from pacelight.summary import example_summary

    d = example_summary("x", "x", model={"tone": "tone-bench 0", "pipeline": "pacelight bench"})
    d["cues"] = [{"t": 40.0 + i, "kind": "pace", "state": "on" if i % 2 == 0 else "off"} for i in range(8)]
    return d


def _payload(call_id: str, device_id: str) -> bytes:
    d = _template()
    d["call_id"], d["device_id"] = call_id, device_id
    return json.dumps(d).encode()


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    except sqlite3.Error:
        return 0


class AggregatorProc:
    def __init__(self, work: Path) -> None:
        self.port = _free_port()
        self.work = work
        self.db = work / "pacelight.sqlite"
        env = dict(os.environ, PACELIGHT_DATA_DIR=str(work))
        self.proc = subprocess.Popen([sys.executable, "-m", "pacelight.cli", "aggregator", "--listen",
                                      f"127.0.0.1:{self.port}", "--data-dir", str(work)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=open(work / "agg.log", "ab"))
        deadline = time.monotonic() + 20
        while _count(self.db) == 0 and not (work / "pacelight.sqlite").exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("aggregator did not start: " + (work / "agg.log").read_text()[-500:])
            time.sleep(0.1)
        time.sleep(1.0)  # subscribed

    def broker_pid(self) -> int | None:
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            return int(kids[0]) if kids else None
        except OSError:
            return None

    def broker_rss_mib(self) -> float | None:
        pid = self.broker_pid()
        if pid is None:
            return None
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bench_ingest(n: int, publishers: int) -> dict:
    import paho.mqtt.client as mqtt

    with tempfile.TemporaryDirectory(prefix="pacelight-bench-") as tmp:
        agg = AggregatorProc(Path(tmp))
        try:
            payloads = [[_payload(f"bench-{p}-{i:07d}", f"bench-dev-{p}") for i in range(p, n, publishers)]
                        for p in range(publishers)]
            clients = []
            for p in range(publishers):
                c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-dev-{p}",
                                protocol=mqtt.MQTTv5)
                c.max_inflight_messages_set(1000)
                cred = json.loads((agg.work / "security" / "local-tools.json").read_text())  # broker auth
                c.username_pw_set(cred["username"], cred["password"])
                c.connect("127.0.0.1", agg.port)
                c.loop_start()
                clients.append(c)

            def pump(c, msgs) -> None:
                info = None
                for m in msgs:
                    info = c.publish(f"pacelight/{c._client_id.decode()}/calls", m, qos=1)
                if info is not None:
                    info.wait_for_publish(120)

            def publish_all(batches) -> float:
                t = time.perf_counter()
                threads = [threading.Thread(target=pump, args=(c, m)) for c, m in zip(clients, batches, strict=True)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                return time.perf_counter() - t

            def wait_stored(target: int) -> int:
                deadline = time.monotonic() + 120
                stored = _count(agg.db)
                while stored < target and time.monotonic() < deadline:
                    time.sleep(0.02)
                    stored = _count(agg.db)
                return stored

            # (a) backlog drain: the aggregator is frozen (SIGSTOP) while the broker takes the
            # whole load, then resumed; this isolates the aggregator's ingest rate from the
            # Python load generator sharing the same 2 cores.
            half = [m[: len(m) // 2] for m in payloads]
            rest = [m[len(m) // 2:] for m in payloads]
            n_a = sum(len(m) for m in half)
            agg.proc.send_signal(signal.SIGSTOP)
            try:
                publish_all(half)
            finally:
                agg.proc.send_signal(signal.SIGCONT)
            t0 = time.perf_counter()
            stored_a = wait_stored(n_a)
            t_drain = time.perf_counter() - t0
            # (b) end to end: publishing and ingest at the same time
            t0 = time.perf_counter()
            t_pub = publish_all(rest)
            stored = wait_stored(n)
            t_all = time.perf_counter() - t0
            for c in clients:
                c.loop_stop()
                c.disconnect()
        finally:
            agg.stop()
    return {"n": n, "stored": stored, "drain_n": n_a, "drain_stored": stored_a, "drain_s": t_drain,
            "rate": stored_a / t_drain, "e2e_n": n - n_a, "publish_s": t_pub, "total_s": t_all,
            "e2e_rate": (stored - stored_a) / t_all}


# -- raw MQTT 5 for the connection load generator ---------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _connect_packet(client_id: str, keepalive: int = 120, cred: tuple[str, str] | None = None) -> bytes:
    flags = 0x02 | (0xC0 if cred else 0)  # clean start (+ username and password)
    var = _str("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive) + _varint(0)
    body = var + _str(client_id) + (_str(cred[0]) + _str(cred[1]) if cred else b"")
    return bytes([0x10]) + _varint(len(body)) + body


def _publish_packet(topic: str, pid: int, payload: bytes) -> bytes:
    body = _str(topic) + struct.pack("!H", pid) + _varint(0) + payload
    return bytes([0x32]) + _varint(len(body)) + body


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first = (await reader.readexactly(1))[0]
    mult, length = 1, 0
    while True:
        b = (await reader.readexactly(1))[0]
        length += (b & 0x7F) * mult
        if not b & 0x80:
            break
        mult *= 128
    return first, await reader.readexactly(length)


async def _load(port: int, n_conn: int, rate_per_s: float, duration_s: float, stats: dict,
                cred: tuple[str, str] | None = None) -> None:
    period = n_conn / rate_per_s  # each device publishes once per period
    held = asyncio.Event()
    sem = asyncio.Semaphore(100)
    stop_at = 0.0

    async def device(i: int) -> None:
        dev = f"load-{i:05d}"
        async with sem:  # bounded connect burst
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_connect_packet(dev, cred=cred))
            await writer.drain()
            kind, body = await _read_packet(reader)
        if kind >> 4 != 2 or body[1] != 0:
            raise RuntimeError(f"CONNACK refused for {dev}")
        stats["connected"] += 1
        stats["max_connected"] = max(stats["max_connected"], stats["connected"])
        await held.wait()
        await asyncio.sleep(random.uniform(0, period))
        seq = 0
        while time.monotonic() < stop_at:
            seq += 1
            writer.write(_publish_packet(f"pacelight/{dev}/calls", seq % 65535 or 1,
                                         _payload(f"{dev}-{seq:05d}", dev)))
            await writer.drain()
            kind, _ = await _read_packet(reader)
            if kind >> 4 == 4:
                stats["puback"] += 1
            stats["published"] += 1
            await asyncio.sleep(period)
        stats["open_at_end"] += 0 if writer.is_closing() else 1
        writer.write(bytes([0xE0, 0]))  # DISCONNECT
        await writer.drain()
        writer.close()
        stats["connected"] -= 1

    tasks = [asyncio.create_task(device(i)) for i in range(n_conn)]
    t_conn = time.monotonic()
    while stats["connected"] < n_conn and time.monotonic() - t_conn < 60:
        if any(t.done() and t.exception() for t in tasks):
            break
        await asyncio.sleep(0.05)
    stats["connect_s"] = time.monotonic() - t_conn
    stop_at = time.monotonic() + duration_s
    held.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    stats["errors"] = sum(1 for r in results if isinstance(r, Exception))


def bench_connections(n_conn: int, rate_per_s: float, duration_s: float) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n_conn + 512
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    with tempfile.TemporaryDirectory(prefix="pacelight-bench-") as tmp:
        agg = AggregatorProc(Path(tmp))
        try:
            rss_idle = agg.broker_rss_mib()
            stats = {"connected": 0, "max_connected": 0, "published": 0, "puback": 0, "open_at_end": 0}
            sampler_rss: list[float] = []

            def sample() -> None:
                while not done.is_set():
                    r = agg.broker_rss_mib()
                    if r:
                        sampler_rss.append(r)
                    done.wait(0.5)

            done = threading.Event()
            th = threading.Thread(target=sample, daemon=True)
            th.start()
            local = json.loads((agg.work / "security" / "local-tools.json").read_text())  # broker auth
            asyncio.run(_load(agg.port, n_conn, rate_per_s, duration_s, stats,
                              (local["username"], local["password"])))
            done.set()
            deadline = time.monotonic() + 60
            while _count(agg.db) < stats["published"] and time.monotonic() < deadline:
                time.sleep(0.1)
            stats["stored"] = _count(agg.db)
            stats["rss_idle_mib"] = rss_idle
            stats["rss_peak_mib"] = max(sampler_rss) if sampler_rss else None
            stats["nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        finally:
            agg.stop()
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.mqtt_ingest")
    ap.add_argument("--summaries", type=int, default=20_000)
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0, help="total summaries/s during the connection test")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    ing = bench_ingest(args.summaries, args.publishers)
    print(f"[mqtt_ingest] ingest: backlog {ing['drain_stored']}/{ing['drain_n']} stored in {ing['drain_s']:.2f} s "
          f"({ing['rate']:.0f}/s); end to end {ing['e2e_n']} in {ing['total_s']:.2f} s ({ing['e2e_rate']:.0f}/s, "
          f"publishing took {ing['publish_s']:.2f} s); total stored {ing['stored']}/{ing['n']}")
    con = bench_connections(args.connections, args.rate, args.duration)
    print(f"[mqtt_ingest] connections: {con}")

    ok_ingest = ing["stored"] == ing["n"] and ing["rate"] >= INGEST_TARGET_PER_S
    ok_conn = (con["max_connected"] >= args.connections and con["errors"] == 0
               and con["stored"] == con["published"] and con["published"] > 0)
    if not args.no_record:
        from benchmarks.report import table, write_section

        body = table(["measure", "result", "target", "met"], [
            ["aggregator ingest into SQLite from a broker backlog (validate, batch commit, ack; QoS 1, ~1 KB)",
             f"{ing['drain_stored']}/{ing['drain_n']} in {ing['drain_s']:.2f} s = {ing['rate']:.0f}/s",
             f"≥ {INGEST_TARGET_PER_S:.0f}/s", "yes" if ok_ingest else "NO"],
            [f"end to end while {args.publishers} paho publishers in the benchmark process share the 2 cores",
             f"{ing['e2e_n']} in {ing['total_s']:.2f} s = {ing['e2e_rate']:.0f}/s (publishing alone "
             f"{ing['publish_s']:.2f} s)", "(load-generator bound)", "-"],
            ["concurrent device connections held (asyncio raw MQTT 5, one thread)",
             f"{con['max_connected']} (connect phase {con['connect_s']:.1f} s)", f"{args.connections}",
             "yes" if con["max_connected"] >= args.connections else "NO"],
            [f"steady publishing {args.rate:.0f}/s for {args.duration:.0f} s over those connections",
             f"{con['published']} published, {con['puback']} PUBACKs, {con['stored']} stored, "
             f"{con['errors']} client errors", "all stored", "yes" if ok_conn else "NO"],
            ["mosquitto RSS idle → peak with the connections",
             f"{con['rss_idle_mib']:.1f} → {con['rss_peak_mib']:.1f} MiB"
             if con["rss_idle_mib"] and con["rss_peak_mib"] else "n/a", "-", "-"],
        ])
        body += (f"\n\nOpen-file limit during the connection test: {con['nofile']} (the benchmark raises the "
                 "soft limit to connections + 512 when it can; mosquitto inherits it via the aggregator).")
        write_section("mqtt_ingest", "MQTT ingest and broker connections", body)
    return 0 if ok_ingest and ok_conn else 1


if __name__ == "__main__":
    sys.exit(main())
