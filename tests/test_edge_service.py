"""`pacelight edge run` as a real process (fake capture backend "wav"), and `edge replay` CLI.

Signals: SIGHUP reloads the config (a bad one is rejected and the old one kept; a good one
applies when the next call starts); SIGTERM flushes the call in progress as a `partial: true`
summary into the outbox and exits 0. With a broker, the publisher delivers the outbox to the
aggregator, which stores and acks (the outbox empties).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _edge_helpers import RATE_HZ, make_session, tone_model_env, write_config, write_wav
from pacelight.edge.outbox import Outbox

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def session_wav(tmp_path_factory):
    s = make_session()
    return write_wav(tmp_path_factory.mktemp("edge") / "session.wav", s.audio), s


def _env() -> dict:
    env = dict(os.environ, **tone_model_env())
    env.pop("NOTIFY_SOCKET", None)
    return env


def _status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _wait(cond, timeout_s: float, what: str, proc=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"edge run exited ({proc.returncode}) while waiting for {what}: "
                                 f"{proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _pending(outbox: Path) -> list[dict]:
    if not outbox.exists():
        return []
    with Outbox(outbox) as box:
        return [json.loads(i.payload) for i in box.pending()]


def test_edge_run_sighup_reload_and_sigterm_partial(tmp_path, session_wav):
    wav, sess = session_wav
    cfg = write_config(tmp_path / "config.toml", tmp_path, wav, speed=4.0)
    status, outbox = tmp_path / "status.json", tmp_path / "outbox.sqlite"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # stands in for systemd's notify socket
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(0.2)
    messages: list[str] = []

    def listen():  # like systemd: read continuously (the queue holds only a few datagrams)
        while notify.fileno() >= 0:
            try:
                messages.append(notify.recv(256).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    env = dict(_env(), NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="1000000")
    proc = subprocess.Popen([sys.executable, "-m", "pacelight.cli", "-v", "edge", "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        _wait(lambda: _status(status).get("state") == "in_call", 30, "the first call", proc)
        first = _wait(lambda: _pending(outbox), 30, "the first summary", proc)
        assert len(first) == 1 and "partial" not in first[0]
        assert first[0]["device_id"] == "edge-test"
        # Between calls: a broken config is rejected, the process keeps running on the old one.
        good = cfg.read_text()
        cfg.write_text(good + "\n[calls.bogus]\n")
        proc.send_signal(signal.SIGHUP)
        _wait(lambda: "reload rejected" in (_status(status).get("last_error") or ""), 10, "the rejection", proc)
        cfg.write_text(good.replace("end_silence_s = 8.0", "end_silence_s = 9.0"))
        proc.send_signal(signal.SIGHUP)
        _wait(lambda: _status(status).get("config_reload_pending"), 10, "the reload", proc)
        st = _wait(lambda: (s := _status(status)).get("state") == "in_call" and s, 30, "the second call", proc)
        assert st["config_generation"] == 2 and not st["config_reload_pending"]  # applied at call start
        assert st["current_call"]["call_id"] != first[0]["call_id"]
        assert st["xruns"] == 0 and st["outbox_depth"] == 1
        time.sleep(1.0)  # a few seconds of the second call (4x real time)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    summaries = _pending(outbox)
    assert len(summaries) == 2
    second = summaries[1]
    assert second["partial"] is True and 2.0 < second["duration_s"] < 20.0
    assert _status(status)["state"] == "stopped"
    assert "Traceback" not in err
    time.sleep(0.3)
    notify.close()
    listener.join(2)
    assert messages[0] == "READY=1" and "STOPPING=1" in messages
    assert messages.count("WATCHDOG=1") >= 5  # every 0.5 s while the analysis thread is alive


def test_edge_replay_cli_json_and_bad_input(tmp_path, session_wav):
    wav, _ = session_wav
    call = write_wav(tmp_path / "call.wav", __import__("soundfile").read(str(wav), dtype="float32")[0]
                     [int(1.5 * RATE_HZ) : int(23 * RATE_HZ)])
    outbox = tmp_path / "ob.sqlite"
    r = subprocess.run([sys.executable, "-m", "pacelight.cli", "edge", "replay", str(call), "--speed", "max",
                        "--json", "--outbox", str(outbox)], capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert [p["call_id"] for p in _pending(outbox)] == [summary["call_id"]]  # the printed one is the queued one
    assert summary["duration_s"] == pytest.approx(21.5, abs=0.01)
    bad = subprocess.run([sys.executable, "-m", "pacelight.cli", "edge", "replay", str(tmp_path / "nope.wav")],
                         capture_output=True, text=True, env=_env(), timeout=60)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_edge_run_publishes_through_the_outbox_to_the_aggregator(tmp_path, session_wav, mosquitto, aggregator):
    wav, _ = session_wav
    cfg = write_config(tmp_path / "config.toml", tmp_path, wav, speed=0.0, after_eof="stop",
                       extra=f'\n[mqtt]\nbroker = "{mosquitto.url}"\n')
    r = subprocess.run([sys.executable, "-m", "pacelight.cli", "edge", "run", "--config", str(cfg)],
                       capture_output=True, text=True, env=_env(), timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # The run ends at the end of the file; it waits (runtime.stop_drain_s) for the host's acks.
    assert len(aggregator.store.call_ids()) == 2
    assert _pending(tmp_path / "outbox.sqlite") == []  # deleted on the host's ack only


def test_edge_run_without_pyaudio_fails_fast_with_one_line(tmp_path):
    try:
        import pyaudio  # noqa: F401
        pytest.skip("PyAudio is installed here")
    except ImportError:
        pass
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[device]\nid = "x"\noutbox_path = "{tmp_path / "ob.sqlite"}"\n[health]\nstatus_path = ""\n')
    r = subprocess.run([sys.executable, "-m", "pacelight.cli", "edge", "run", "--config", str(cfg)],
                       capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 1 and "needs PyAudio" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[capture]\nrate = 16000\n")
    r = subprocess.run([sys.executable, "-m", "pacelight.cli", "edge", "run", "--config", str(bad)],
                       capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 2 and "unknown key 'rate'" in r.stderr


def test_edge_run_without_a_broker_keeps_summaries_in_the_outbox(tmp_path, session_wav):
    from conftest import free_port

    wav, _ = session_wav
    cfg = write_config(tmp_path / "config.toml", tmp_path, wav, speed=0.0, after_eof="stop",
                       extra=f'\n[mqtt]\nbroker = "mqtt://127.0.0.1:{free_port()}"\n')  # nobody listens
    r = subprocess.run([sys.executable, "-m", "pacelight.cli", "edge", "run", "--config", str(cfg)],
                       capture_output=True, text=True, env=_env(), timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(_pending(tmp_path / "outbox.sqlite")) == 2  # queued durably; sent once a broker is reachable
