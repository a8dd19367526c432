"""`pacelight demo`: a simulated shift, end to end, on one machine.

Two agents at two desks take several calls in several languages (simulated by
:mod:`pacelight.sim`). Each call is replayed through the appliance's live path (`pacelight edge
replay`: fake sound card, ring buffer, analysis thread, LED cues rendered in the terminal,
outbox), published over MQTT to an aggregator with an embedded mosquitto, stored in SQLite and
served on the dashboard. At the end the stored summaries are listed and one call's analysis
report is printed. Everything runs as separate processes of the real `pacelight` command.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pacelight.errors import PacelightError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoAgent:
    name: str
    device_id: str
    langs: tuple[str, ...]


AGENTS = (
    DemoAgent("Alice", "desk-01", ("en", "ru")),
    DemoAgent("Bo", "desk-02", ("cmn", "en")),
)
DEMO_USER, DEMO_PASSWORD = "supervisor", "pacelight-demo"
IT_USER, IT_PASSWORD = "it", "pacelight-demo-it"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Progress:
    """One-line progress on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.t0 = time.monotonic()

    def step(self, text: str) -> None:
        self.stream.write(f"[{time.monotonic() - self.t0:5.1f} s] {text}\n")
        self.stream.flush()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pacelight.cli", *args]


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise PacelightError(f"{' '.join(args[3:5])} failed: {msg}")
    return r


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (loopback)
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise PacelightError(f"the aggregator did not answer on {url} within {timeout_s:.0f} s")


def _device_config(path: Path, agent: DemoAgent, bundle: Path, data_dir: Path) -> Path:
    """The desk's config: the provisioning bundle's [mqtt] table plus demo outputs and paths."""
    import tomllib

    cfg = tomllib.loads((bundle / "config.toml").read_text())
    mqtt = {k: v for k, v in cfg.get("mqtt", {}).items() if isinstance(v, str)}
    lines = [
        "[device]", f'id = "{agent.device_id}"', f'data_dir = "{data_dir}"', "",
        "[outputs]", "terminal = true", "",
        "[health]", 'status_path = ""', "",
        "[mqtt]",
    ] + [f'{k} = "{v}"' for k, v in mqtt.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _api(url: str, body: dict, token: str | None = None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
            return json.loads(resp.read() or b"{}")
    except OSError as exc:
        raise PacelightError(f"dashboard API {url}: {exc}") from None


def _register_agents(dashboard: str) -> None:
    """What IT does on the admin page: a team, its agents, and who sits at which desk since when."""
    token = _api(f"{dashboard}/api/login", {"username": IT_USER, "password": IT_PASSWORD})["token"]
    _api(f"{dashboard}/api/teams", {"team_id": "team-a", "name": "Team A"}, token)
    for agent in AGENTS:
        agent_id = agent.name.lower()
        _api(f"{dashboard}/api/agents", {"agent_id": agent_id, "name": agent.name, "team_id": "team-a"}, token)
        _api(f"{dashboard}/api/assignments", {"device_id": agent.device_id, "agent_id": agent_id,
                                              "valid_from": "2026-01-01"}, token)


def _publish_outbox(config: Path, timeout_s: float) -> int:
    """Run the device's MQTT publisher on its outbox until it is empty (or the timeout)."""
    from pacelight.commands.edge import make_publisher
    from pacelight.edge.outbox import Outbox
    from pacelight.edge.settings import load_settings

    settings = load_settings(str(config))
    factory = make_publisher(settings)
    if factory is None:
        raise PacelightError(f"{config}: no [mqtt] broker configured")
    with Outbox(settings.device.outbox_file(), settings.device.outbox_max_items) as outbox:
        pub = factory(outbox, None)
        pub.start()
        try:
            deadline = time.monotonic() + timeout_s
            while len(outbox) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            pub.stop()
        return len(outbox)


def run_demo(out: Path, calls_per_agent: int = 3, seed: int = 7, live_speed: float = 6.0,
             call_s: float = 75.0, serve: bool = False, http_port: int | None = None) -> int:
    from pacelight.analysis.runner import analyze_file
    from pacelight.commands.analyze import render_report
    from pacelight.sim.call import write_calls

    prog = Progress()
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    host_dir = out / "host"
    host_dir.mkdir()
    db_url = f"sqlite:///{host_dir / 'pacelight.sqlite'}"

    # 1. A simulated shift.
    calls: list[tuple[DemoAgent, Path]] = []
    for k, agent in enumerate(AGENTS):
        prog.step(f"simulating {calls_per_agent} calls for {agent.name} at {agent.device_id} "
                  f"({', '.join(agent.langs)})")
        wavs = write_calls(out / "calls" / agent.device_id, calls_per_agent, seed + 101 * k,
                           langs=agent.langs, duration_s=call_s)
        calls += [(agent, w) for w in wavs]

    # 2. IT provisions each desk: broker credential, ACL entry and a bundle (TLS, project CA).
    mqtt_port, tls_port, http_port = free_port(), free_port(), http_port or free_port()
    env = dict(os.environ, PACELIGHT_DATA_DIR=str(host_dir))
    configs = {}
    for agent in AGENTS:
        dev_dir = out / "devices" / agent.device_id
        bundle = dev_dir / "bundle"
        dev_dir.mkdir(parents=True)
        _run(_cli("provision", agent.device_id, "--out", str(bundle), "--host", "127.0.0.1", "--port",
                  str(tls_port), "--install-dir", str(bundle), "--data-dir", str(host_dir)), env=env)
        configs[agent.device_id] = _device_config(dev_dir / "config.toml", agent, bundle, dev_dir)
    prog.step(f"provisioned {', '.join(a.device_id for a in AGENTS)} (password + project CA, TLS)")

    # 3. The host: aggregator with its embedded mosquitto (TLS for devices), API and dashboard.
    agg_log = (out / "aggregator.log").open("w")
    agg = subprocess.Popen(_cli("aggregator", "--listen", f"127.0.0.1:{mqtt_port}", "--tls-listen",
                                f"127.0.0.1:{tls_port}", "--db", db_url, "--http", f"127.0.0.1:{http_port}",
                                "--data-dir", str(host_dir)),
                           stdout=agg_log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        dashboard = f"http://127.0.0.1:{http_port}"
        _wait_http(f"{dashboard}/healthz", 30)
        prog.step(f"aggregator up: MQTT/TLS 127.0.0.1:{tls_port}, dashboard {dashboard}")
        _run(_cli("users", "add", DEMO_USER, "--role", "supervisor", "--password-stdin", "--db", db_url),
             input=DEMO_PASSWORD + "\n", env=env)
        _run(_cli("users", "add", IT_USER, "--role", "it", "--password-stdin", "--db", db_url),
             input=IT_PASSWORD + "\n", env=env)

        _register_agents(dashboard)
        prog.step("IT registered the team, both agents and their desks on the dashboard")

        # 4. Each desk replays its calls through the appliance's live path (summaries go to its outbox).
        for i, (agent, wav) in enumerate(calls):
            speed = str(live_speed) if i == 0 else "max"
            prog.step(f"call {i + 1}/{len(calls)}: {agent.name} ({agent.device_id}) {wav.name}, replay at "
                      f"{f'{live_speed:g}× real time with the LED cue below' if i == 0 else 'full speed'}")
            quiet = [] if i == 0 else ["--json"]  # the first call shows its report; the rest stay quiet
            r = subprocess.run(_cli("edge", "replay", str(wav), "--speed", speed, "--config",
                                    str(configs[agent.device_id]), *quiet), env=env,
                               stdout=None if i == 0 else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                raise PacelightError(f"edge replay of {wav.name} failed: "
                                     f"{(r.stderr.strip().splitlines() or ['?'])[-1]}")

        # 5. Each desk's publisher (the one `edge run` starts) delivers its outbox; a summary leaves
        #    the outbox only when the aggregator acknowledges it after its database commit.
        for agent in AGENTS:
            n_left = _publish_outbox(configs[agent.device_id], timeout_s=60)
            prog.step(f"{agent.device_id}: outbox delivered ({n_left} left)")

        # 6. Every summary is stored.
        deadline = time.monotonic() + 60
        stored: list[dict] = []
        while time.monotonic() < deadline:
            r = _run(_cli("calls", "list", "--db", db_url, "--json"), env=env)
            stored = json.loads(r.stdout)
            if len(stored) >= len(calls):
                break
            time.sleep(0.5)
        prog.step(f"{len(stored)}/{len(calls)} call summaries stored by the aggregator")
        if len(stored) < len(calls):
            raise PacelightError(f"only {len(stored)} of {len(calls)} summaries reached the aggregator "
                                 f"(see {out / 'aggregator.log'})")

        # 7. Report.
        w = sys.stdout.write
        w("\nStored call summaries (what left the devices: numbers only, no audio):\n\n")
        w(f"  {'device':<8} {'call':<34} {'dur s':>6} {'agent %':>7} {'pace a/c syl/s':>15} "
          f"{'interr. a/c':>11} {'cues':>5}\n")
        for s in sorted(stored, key=lambda d: (d["device_id"], d["started_at"])):
            pa, pc = s["pace"]["agent_syl_s"], s["pace"]["customer_syl_s"]
            ratio = s["talk"]["agent_ratio"]
            w(f"  {s['device_id']:<8} {s['call_id'][:34]:<34} {s['duration_s']:>6.0f} "
              f"{'—' if ratio is None else f'{100 * ratio:.0f}':>7} "
              f"{(f'{pa:.1f}' if pa else '—') + ' / ' + (f'{pc:.1f}' if pc else '—'):>15} "
              f"{str(s['overtalk']['agent_interruptions']) + ' / ' + str(s['overtalk']['customer_interruptions']):>11} "
              f"{sum(1 for c in s['cues'] if c['state'] == 'on'):>5}\n")
        first = calls[0][1]
        w("\n" + render_report(analyze_file(first, with_segments=True), first.name))
        w(f"\nDashboard: {dashboard}  (log in as '{DEMO_USER}' / '{DEMO_PASSWORD}'; IT: '{IT_USER}' / "
          f"'{IT_PASSWORD}')\n")
        if serve:
            w("Serving until Ctrl-C ...\n")
            sys.stdout.flush()
            try:
                agg.wait()
            except KeyboardInterrupt:
                pass
        else:
            w(f"To browse it again: pacelight aggregator --data-dir {host_dir} --db {db_url} "
              f"--http 127.0.0.1:8080  (then open http://127.0.0.1:8080)\n")
        return 0
    finally:
        if agg.poll() is None:
            agg.send_signal(signal.SIGTERM)
            try:
                agg.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(agg.pid, signal.SIGKILL)
        agg_log.close()
