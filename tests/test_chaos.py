"""Zero-loss chaos run: N summaries from M device processes while the aggregator, the broker and
device processes are SIGKILLed at random moments and restarted. Every summary must be stored
exactly once.

Short form in ``make test`` (PACELIGHT_CHAOS_SUMMARIES=200, PACELIGHT_CHAOS_DEVICES=5 by default);
``make chaos`` runs 1,000 summaries from 20 devices. Set PACELIGHT_CHAOS_SEED to replay a run.

This file is also the device process: ``python tests/test_chaos.py device ID COUNT URL DIR``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------
# device process
def device_main(device_id: str, count: int, url: str, workdir: str) -> int:
    sys.path.insert(0, str(HERE))
    from conftest import build_summary
    from pacelight.edge.outbox import Outbox
    from pacelight.edge.publisher import Publisher, PublisherSettings

    wd = Path(workdir)
    progress = wd / f"{device_id}.progress"
    outbox = Outbox(wd / f"{device_id}.outbox.sqlite")
    pub = Publisher(device_id, url, outbox, settings=PublisherSettings(
        ack_timeout_s=3.0, backoff_min_s=0.1, backoff_max_s=1.0, keepalive_s=5)).start()
    rng = random.Random()
    i = int(progress.read_text()) if progress.exists() else 0
    while i < count:
        pub.send(build_summary(f"{device_id}-call-{i:05d}", device_id))
        i += 1
        tmp = progress.with_suffix(".tmp")
        tmp.write_text(str(i))
        os.replace(tmp, progress)
        time.sleep(rng.uniform(0.05, 0.45))
    while len(outbox):
        time.sleep(0.1)
    pub.stop()
    return 0


# --------------------------------------------------------------------------------------------
# the test
def test_chaos_zero_loss_exactly_once(tmp_path: Path, mosquitto_factory):
    from conftest import PYTHON, free_port
    from pacelight_host.store import Store

    n_total = int(os.environ.get("PACELIGHT_CHAOS_SUMMARIES", "200"))
    n_dev = int(os.environ.get("PACELIGHT_CHAOS_DEVICES", "5"))
    seed = int(os.environ.get("PACELIGHT_CHAOS_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    per_dev = [n_total // n_dev + (1 if d < n_total % n_dev else 0) for d in range(n_dev)]
    broker = mosquitto_factory(free_port())
    work = tmp_path / "devices"
    work.mkdir()
    db_path = tmp_path / "agg" / "pacelight.sqlite"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    logs = tmp_path / "logs"
    logs.mkdir()

    def start_aggregator() -> subprocess.Popen:
        return subprocess.Popen([PYTHON, "-m", "pacelight.cli", "aggregator", "--broker", broker.url,
                                 "--db", f"sqlite:///{db_path}", "--data-dir", str(tmp_path / "agg")],
                                env=env, stdout=subprocess.DEVNULL, stderr=open(logs / "agg.log", "ab"))

    def start_device(d: int) -> subprocess.Popen:
        return subprocess.Popen([PYTHON, str(Path(__file__)), "device", f"chaos-{d:03d}", str(per_dev[d]),
                                 broker.url, str(work)], env=env, stdout=subprocess.DEVNULL,
                                stderr=open(logs / f"dev{d}.log", "ab"))

    agg = start_aggregator()
    devices = {d: start_device(d) for d in range(n_dev)}
    kills = {"aggregator": 0, "broker": 0, "device": 0}
    chaos_s = float(os.environ.get("PACELIGHT_CHAOS_SECONDS", "25" if n_total <= 300 else "45"))
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < chaos_s and any(p.poll() is None for p in devices.values()):
            time.sleep(rng.uniform(0.8, 2.5))
            victim = rng.choice(["aggregator", "broker", "device", "device"])
            if victim == "aggregator":
                agg.kill()
                agg.wait()
                time.sleep(rng.uniform(0.0, 0.8))
                agg = start_aggregator()
            elif victim == "broker":
                broker.kill()
                time.sleep(rng.uniform(0.0, 0.8))
                broker.start()
            else:
                running = [d for d, p in devices.items() if p.poll() is None]
                if not running:
                    continue
                d = rng.choice(running)
                devices[d].kill()
                devices[d].wait()
                time.sleep(rng.uniform(0.0, 0.5))
                devices[d] = start_device(d)
            kills[victim] += 1
        # calm phase: everything up, devices finish once every summary is acked
        if not broker.alive():
            broker.start()
        deadline = time.monotonic() + 60
        for d, p in devices.items():
            rc = p.wait(max(1.0, deadline - time.monotonic()))
            assert rc == 0, f"device {d} exited {rc}: {(logs / f'dev{d}.log').read_text()[-2000:]}"
    finally:
        for p in devices.values():
            if p.poll() is None:
                p.kill()
        agg.send_signal(signal.SIGTERM)
        try:
            agg.wait(20)
        except subprocess.TimeoutExpired:
            agg.kill()

    store = Store.open(f"sqlite:///{db_path}")
    try:
        ids = store.call_ids()
        stored = store.count_calls()
        quarantined = store.count_quarantine()
    finally:
        store.close()
    expected = {f"chaos-{d:03d}-call-{i:05d}" for d in range(n_dev) for i in range(per_dev[d])}
    missing = expected - set(ids)
    extra = set(ids) - expected
    print(f"\n[chaos] seed={seed} summaries={n_total} devices={n_dev} stored={stored} distinct={len(set(ids))} "
          f"missing={len(missing)} unexpected={len(extra)} duplicates={len(ids) - len(set(ids))} "
          f"quarantined={quarantined} kills={kills} elapsed={time.monotonic() - t0:.1f}s")
    assert not missing, f"lost {len(missing)}: {sorted(missing)[:10]}"
    assert not extra and len(ids) == len(set(ids)) == n_total
    assert quarantined == 0
    assert kills["aggregator"] + kills["broker"] + kills["device"] >= 3


if __name__ == "__main__" and len(sys.argv) >= 6 and sys.argv[1] == "device":
    sys.exit(device_main(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]))
