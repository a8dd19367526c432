"""Dashboard in real headless Chromium against the real aggregator process.

Summaries are really ingested: the aggregator command (``--broker`` = the mosquitto fixture,
``--http``) receives them from ``pacelight send`` and from device publishers; then a browser logs
in, reads the pages and checks that charts are drawn with data points. Screenshots are kept in
``test-artifacts/dashboard/`` (gitignored).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from _api_helpers import call, seed_registry
from conftest import PYTHON, ROOT, free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
PW = "correct horse"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("aggregator exited: " + proc.stderr.read())
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


@pytest.fixture
def dashboard(tmp_path: Path, mosquitto):
    from pacelight_host.api.auth import Users
    from pacelight_host.api.queries import Queries
    from pacelight_host.store import Store

    data = tmp_path / "data"
    data.mkdir()
    db = f"sqlite:///{data / 'pacelight.sqlite'}"
    store = Store.open(db)
    Users(store).add("sue", "supervisor", PW)
    Users(store).add("ian", "it", PW)
    seed_registry(Queries(store))
    store.close()
    port = free_port()
    env = dict(os.environ, PACELIGHT_DATA_DIR=str(data))
    proc = subprocess.Popen([PYTHON, "-m", "pacelight.cli", "aggregator", "--broker", mosquitto.url, "--db", db,
                             "--http", f"127.0.0.1:{port}", "--data-dir", str(data)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        yield {"url": f"http://127.0.0.1:{port}", "db": db, "env": env, "data": data, "broker": mosquitto.url}
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
    assert rc == 0, proc.stderr.read()


def _ingest(d: dict, tmp_path: Path) -> None:
    """One call through ``pacelight send`` (with a timeline), the rest through device publishers."""
    from pacelight.edge.outbox import Outbox
    from pacelight.edge.publisher import Publisher

    detailed = call("call-timeline", "dev-1", "2026-11-20T10:00:00Z", segments=True,
                    cues=[{"t": 42.0, "kind": "overtalk", "state": "on"}, {"t": 45.0, "kind": "overtalk", "state": "off"}])
    f = tmp_path / "timeline.json"
    f.write_text(detailed.to_json())
    r = subprocess.run([PYTHON, "-m", "pacelight.cli", "send", str(f), "--broker", d["broker"], "--device-id", "dev-1",
                        "--timeout", "30"], env=d["env"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    plan = {"dev-1": [], "dev-2": [], "dev-3": []}
    for m, month in enumerate(("09", "10", "11")):           # ann at dev-1: talk ratio falls month by month
        for k in range(3):
            plan["dev-1"].append(call(f"ann-{month}-{k}", "dev-1", f"2026-{month}-1{k}T09:00:00Z",
                                      ratio_agent_s=75.0 - 10 * m, customer_s=25.0 + 10 * m, pace=5.8 - 0.4 * m))
        plan["dev-2"].append(call(f"bob-{month}", "dev-2", f"2026-{month}-15T09:00:00Z", pace=4.2))
    plan["dev-3"] = [call(f"cid-{k}", "dev-3", f"2026-11-0{k + 1}T09:00:00Z") for k in range(3)]
    pubs = []
    for dev, summaries in plan.items():
        box = Outbox(tmp_path / f"outbox-{dev}.sqlite")
        pub = Publisher(dev, d["broker"], box).start()
        for s in summaries:
            pub.send(s)
        pubs.append((pub, box))
    deadline = time.monotonic() + 30
    while any(len(box) for _, box in pubs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(len(box) for _, box in pubs), "summaries were not acked"
    for pub, _box in pubs[:2]:        # dev-3 stays online; dev-1 and dev-2 go offline
        pub.stop()
    d["keep"] = pubs[2]


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_supervisor_and_it_browse_really_ingested_calls(dashboard, tmp_path: Path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    _ingest(dashboard, tmp_path)
    base = dashboard["url"]
    profile = tmp_path / "chromium-profile"
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, args=CHROME_ARGS,
                                                   headless=True, viewport={"width": 1280, "height": 900})
        try:
            page = ctx.new_page()
            page.set_default_timeout(10_000)
            page.goto(f"{base}/calls")
            assert "/login" in page.url
            page.fill("input[name=username]", "sue")
            page.fill("input[name=password]", "wrong password")
            page.click("button[type=submit]")
            assert page.locator("#login-error").is_visible()
            page.fill("input[name=username]", "sue")
            page.fill("input[name=password]", PW)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/calls")
            cookie = next(c for c in ctx.cookies() if c["name"] == "pacelight_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            page.goto(f"{base}/calls?since=2026-11-01&until=2026-11-30")
            assert page.locator("#calls-table tbody tr").count() == 8    # all November calls
            page.select_option("select[name=agent]", "ann")
            page.fill("input[name=since]", "2026-09-01")
            page.click("form.filters button")
            assert page.locator("#calls-table tbody tr").count() == 10
            csv_href = page.locator("#calls-csv").get_attribute("href")
            csv_text = page.request.get(base + csv_href).text()
            assert csv_text.splitlines()[0].startswith("call_id,") and len(csv_text.splitlines()) == 11

            page.goto(f"{base}/?since=2026-09-01&until=2026-11-30")
            assert "Blue team" in page.locator("#teams-table").inner_text()
            assert page.locator("svg[data-chart=calls-per-day] circle.pt").count() >= 10
            _shot(page, "overview")

            page.goto(f"{base}/agents/ann?since=2026-09-01&until=2026-11-30")
            pts = page.locator("svg[data-chart=agent-talk-ratio] circle.pt")
            assert pts.count() == 3
            vals = [float(pts.nth(i).get_attribute("data-value")) for i in range(3)]
            assert vals[0] > vals[1] > vals[2]                           # the trend the data has
            assert vals[0] == pytest.approx(75.0, abs=0.5)               # September: 3 × 75/100 %, plus none
            assert page.locator("svg[data-chart=agent-pace] circle.pt").count() == 3
            assert page.locator("svg[data-chart=agent-tone] rect.bar").count() == 9
            assert page.locator("svg[data-chart=agent-pace-dist] rect.bar").count() == 12
            assert "syl/s" in page.content() and "words per minute" not in page.content()
            _shot(page, "agent")

            page.goto(f"{base}/calls/call-timeline")
            assert page.locator("svg[data-chart=timeline] rect.seg").count() == 4
            assert page.locator("svg[data-chart=timeline] rect.ovl[data-kind=interruption]").count() == 1
            assert page.locator("svg[data-chart=timeline] rect.cue").count() == 1
            _shot(page, "call")

            page.goto(f"{base}/fleet")
            assert "Not allowed" in page.content()
            page.click("header form button")                              # log out
            page.wait_for_url(f"{base}/login")
            assert page.request.get(f"{base}/api/me").status == 401

            page.fill("input[name=username]", "ian")
            page.fill("input[name=password]", PW)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            page.goto(f"{base}/fleet")
            rows = {r.split("\t")[0]: r for r in page.locator("#devices-table tbody tr").all_inner_texts()}
            assert set(rows) == {"dev-1", "dev-2", "dev-3"}
            assert "online" in rows["dev-3"] and "offline" in rows["dev-1"]
            assert "cid" in rows["dev-3"] and "tone-test 0" in rows["dev-3"]
            _shot(page, "fleet")

            page.goto(f"{base}/admin")
            page.fill("form[action='/admin/assign'] input[name=device_id]", "dev-3")
            page.select_option("form[action='/admin/assign'] select[name=agent_id]", "bob")
            page.fill("form[action='/admin/assign'] input[name=valid_from]", "2026-11-01")
            page.click("form[action='/admin/assign'] button")
            assert "device dev-3 assigned" in page.content()
            _shot(page, "admin")
            api = json.loads(page.request.get(f"{base}/api/assignments?device=dev-3").text())
            assert api["items"][0]["agent_id"] == "bob"
        finally:
            ctx.close()
            dashboard.pop("keep")[0].stop()
    assert (ARTIFACTS / "agent.png").stat().st_size > 10_000
