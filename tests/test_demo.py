"""`pacelight demo` end to end: simulate → provision → aggregator → edge replay → MQTT → store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys


def test_demo_runs_a_small_shift_end_to_end(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, "-m", "pacelight.cli", "demo", "--out", str(out), "--calls", "1",
                        "--call-s", "30", "--live-speed", "20"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2/2 call summaries stored" in r.stderr
    assert "Dashboard: http://127.0.0.1:" in r.stdout
    # The stored rows are the devices' own summaries, one per desk, keyed by call_id.
    db = out / "host" / "pacelight.sqlite"
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT device_id, agent_id, summary FROM calls ORDER BY device_id").fetchall()
    # IT's desk assignments attribute each desk's call to its agent.
    assert [(d, a) for d, a, _ in rows] == [("desk-01", "alice"), ("desk-02", "bo")]
    for _, _, s in rows:
        summary = json.loads(s)
        assert summary["schema"].startswith("pacelight.call-summary/1")
        assert summary["duration_s"] > 25
