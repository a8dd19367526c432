"""REST API: auth (401/403, sessions), attribution over desk changes, filters, aggregates, CSV."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from datetime import timedelta

import pytest
from _api_helpers import call, seed_registry
from conftest import PYTHON, utc

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from pacelight_host.api import create_app  # noqa: E402
from pacelight_host.api.app import figures_csv  # noqa: E402
from pacelight_host.api.auth import Users, hash_password, verify_password  # noqa: E402
from pacelight_host.api.queries import PRECISION, CallQuery, Queries  # noqa: E402

PW = "correct horse"


@pytest.fixture
def app_store(sqlite_store):
    users = Users(sqlite_store)
    users.add("sue", "supervisor", PW)
    users.add("ian", "it", PW)
    return sqlite_store


def client(store, user: str | None = None) -> TestClient:
    c = TestClient(create_app(store))
    if user:
        r = c.post("/api/login", json={"username": user, "password": PW})
        assert r.status_code == 200, r.text
    return c


def test_password_hash_is_salted_scrypt():
    a, b = hash_password("pw-123456"), hash_password("pw-123456")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert verify_password("pw-123456", a) and not verify_password("pw-123457", a)
    assert not verify_password("x", "garbage")


def test_auth_401_403_sessions_and_logout(app_store):
    anon = client(app_store)
    assert anon.get("/healthz").json() == {"status": "ok"}
    assert anon.get("/openapi.json").status_code == 200 and anon.get("/docs").status_code == 200
    for path in ("/api/calls", "/api/devices", "/api/aggregates/agents", "/api/me", "/api/agents"):
        assert anon.get(path).status_code == 401, path
    r = anon.get("/calls", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fcalls")
    assert anon.post("/api/login", json={"username": "sue", "password": "wrong pw!"}).status_code == 401
    assert anon.post("/api/login", json={"username": "nobody", "password": PW}).status_code == 401

    sup = TestClient(create_app(app_store))
    r = sup.post("/api/login", json={"username": "sue", "password": PW})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "pacelight_session=" in cookie
    token = r.json()["token"]
    stored = app_store._rows("SELECT token_sha256 FROM dash_sessions")
    assert len(stored) == 1 and token not in stored[0]["token_sha256"]       # only the digest is kept
    assert sup.get("/api/me").json() == {"username": "sue", "role": "supervisor"}
    assert sup.get("/api/calls").status_code == 200
    assert sup.get("/api/devices").status_code == 403
    assert sup.post("/api/teams", json={"team_id": "x", "name": "X"}).status_code == 403
    assert sup.get("/fleet").status_code == 403

    it = client(app_store, "ian")
    assert it.get("/api/devices").status_code == 200
    assert it.get("/api/calls").status_code == 403 and it.get("/calls").status_code == 403
    assert it.get("/").status_code == 200 and it.get("/fleet").status_code == 200

    # bearer token works for scripts; logout ends the session server-side
    bearer = TestClient(create_app(app_store))
    assert bearer.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert sup.post("/api/logout").status_code == 200
    assert bearer.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    # cross-origin form posts are refused
    assert anon.post("/login", data={"username": "sue", "password": PW},
                     headers={"Origin": "http://evil.example"}).status_code == 403


def test_session_expiry(app_store):
    users = Users(app_store, session_ttl_s=60)
    u = users.authenticate("sue", PW)
    fresh = users.create_session(u)
    old = users.create_session(u, now=utc("2020-01-01T00:00:00Z"))
    assert users.session_user(fresh) == u
    assert users.session_user(old) is None
    users.set_password("sue", "another password")
    assert users.session_user(fresh) is None                      # password change ends sessions
    assert users.authenticate("sue", PW) is None and users.authenticate("sue", "another password")


def test_calls_attributed_to_the_agent_at_the_desk_when_the_call_started(app_store):
    q = Queries(app_store)
    seed_registry(q)
    app_store.upsert_calls([call("c-before", "dev-1", "2026-10-05T10:00:00Z")])
    # ann moves to dev-2 on Oct 10; bob leaves the floor; dev-1 gets cid
    q.assign("dev-2", "ann", utc("2026-10-10T00:00:00Z"))
    q.assign("dev-1", "cid", utc("2026-10-10T00:00:00Z"))
    app_store.upsert_calls([call("c-d1-late", "dev-1", "2026-10-12T10:00:00Z"),
                            call("c-d2-late", "dev-2", "2026-10-12T11:00:00Z"),
                            call("c-d2-early", "dev-2", "2026-10-01T11:00:00Z"),
                            call("c-d3-late", "dev-3", "2026-10-12T11:00:00Z")])
    got = {r["call_id"]: r["agent_id"] for r in q.list_calls(CallQuery(limit=100))[1]}
    assert got == {"c-before": "ann", "c-d1-late": "cid", "c-d2-late": "ann", "c-d2-early": "bob",
                   "c-d3-late": None}                      # cid left dev-3 when seated at dev-1
    hist = q.assignments(device_id="dev-1")
    assert [(h["agent_id"], h["valid_to"] is None) for h in hist] == [("cid", True), ("ann", False)]
    # re-seating in the past re-attributes stored calls
    q.assign("dev-3", "bob", utc("2026-10-11T00:00:00Z"))
    assert q.get_call("c-d3-late")["agent_id"] == "bob"


def test_filters_pagination_aggregates_and_csv(app_store):
    q = Queries(app_store)
    seed_registry(q)
    calls = []
    for i in range(12):          # ann: 12 calls in October, agent talk 60 of 100 s
        calls.append(call(f"a-{i:02d}", "dev-1", f"2026-10-{i + 1:02d}T09:00:00Z", ratio_agent_s=60.0,
                          customer_s=40.0, pace=4.0 + 0.2 * (i % 2)))
    for i in range(3):           # bob: 3 calls in November, one fast (7 syl/s > 1.2 × target)
        calls.append(call(f"b-{i}", "dev-2", f"2026-11-0{i + 2}T09:00:00Z", ratio_agent_s=30.0, customer_s=70.0,
                          pace=7.0 if i == 0 else 4.0, interruptions=3))
    calls.append(call("c-0", "dev-3", "2026-11-03T09:00:00Z", pace=None))
    app_store.upsert_calls(calls)
    sup = client(app_store, "sue")

    r = sup.get("/api/calls", params={"agent": "ann", "limit": 5, "offset": 10}).json()
    assert r["total"] == 12 and [c["call_id"] for c in r["items"]] == ["a-01", "a-00"]
    assert sup.get("/api/calls", params={"team": "blue"}).json()["total"] == 15
    assert sup.get("/api/calls", params={"device": "dev-3"}).json()["items"][0]["agent_name"] == "Cid Cole"
    r = sup.get("/api/calls", params={"since": "2026-10-05", "until": "2026-10-06"}).json()
    assert [c["call_id"] for c in r["items"]] == ["a-05", "a-04"]          # until is inclusive by day
    assert sup.get("/api/calls", params={"since": "yesterday"}).status_code == 400
    assert sup.get("/api/calls", params={"limit": 5000}).status_code == 422
    detail = sup.get("/api/calls/b-0").json()
    assert detail["summary"]["call_id"] == "b-0" and detail["agent_id"] == "bob"
    assert detail["agent_backchannels"] == 2 and detail["cues_pace"] == 1
    assert sup.get("/api/calls/nope").status_code == 404

    agg = sup.get("/api/aggregates/agents", params={"period": "month"}).json()["items"]
    by = {(a["key"], a["period"]): a for a in agg}
    ann = by[("ann", "2026-10")]
    assert ann["calls"] == 12 and ann["talk_ratio"] == pytest.approx(0.6)
    assert ann["pace_syl_s"] == pytest.approx(4.1) and ann["pace_vs_target"] == pytest.approx(
        4.1 / q.pace_target_syl_s, abs=0.5e-4)                     # documented precision: 4 decimals
    assert ann["agent_backchannels_per_call"] == pytest.approx(2) and ann["customer_interruptions_per_call"] == 2
    assert ann["tone_high"] == pytest.approx(0.1) and ann["tone_low"] == pytest.approx(0.2)
    assert ann["monologue_max_s"] == pytest.approx(21.0) and ann["cues_pace"] == 12
    bob = by[("bob", "2026-11")]
    assert bob["agent_interruptions_per_call"] == 3 and bob["pace_fast_share"] == 0.3333    # 1/3, 4 decimals
    for item in agg:             # every figure at its documented precision (counts exact)
        for name, v in item.items():
            if isinstance(v, float):
                assert PRECISION[name] is not None and abs(v * 10 ** PRECISION[name] - round(v * 10 ** PRECISION[name])) < 1e-6, (name, v)
    assert by[("cid", "2026-11")]["pace_syl_s"] is None
    weeks = sup.get("/api/aggregates/agents", params={"period": "week", "agent": "ann"}).json()["items"]
    assert [w["period"] for w in weeks] == ["2026-W40", "2026-W41", "2026-W42"]
    assert sum(w["calls"] for w in weeks) == 12
    teams = {t["key"]: t for t in sup.get("/api/aggregates/teams").json()["items"]}
    assert teams["blue"]["calls"] == 15
    assert teams["blue"]["talk_ratio"] == pytest.approx((12 * 60 + 3 * 30) / (15 * 100))
    assert teams["green"]["calls"] == 1
    days = sup.get("/api/aggregates/all", params={"period": "day", "since": "2026-11-01"}).json()["items"]
    assert [d["period"] for d in days] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert sup.get("/api/aggregates/all", params={"period": "year"}).status_code == 422

    r = sup.get("/api/calls", params={"agent": "bob", "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["call_id"] for x in rows] == ["b-2", "b-1", "b-0"] and rows[0]["agent_id"] == "bob"
    r = sup.get("/api/aggregates/teams", params={"format": "csv", "period": "month"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {(x["key"], x["period"]) for x in rows} == {("blue", "2026-10"), ("blue", "2026-11"), ("green", "2026-11")}
    for params in ({"period": "month"}, {"period": "day", "since": "2026-10-01", "until": "2026-11-30"}, {},
                   {"period": "week"}, {"since": "2026-10-03T12:00:00Z", "until": "2026-11-03T12:00:00Z"},
                   {"period": "day", "device": "dev-1"}):
        # the CSV (lines written by SQLite, or tuples folded in Python: weeks, partial days, one
        # device) carries exactly the JSON items: same columns, values, order
        items = sup.get("/api/aggregates/agents", params=params).json()["items"]
        text = sup.get("/api/aggregates/agents", params={**params, "format": "csv"}).text
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == list(items[0]) and len(rows) == len(items) + 1
        # numbers with exactly their figure's decimals, the same values as the JSON
        assert rows[1:] == [["" if v is None else str(v) if PRECISION[k] is None else f"{v:.{PRECISION[k]}f}"
                             for k, v in it.items()] for it in items]
        assert [[None if t == "" else t if PRECISION[k] is None else float(t) for k, t in zip(rows[0], r, strict=True)]
                for r in rows[1:]] == [[v if PRECISION[k] is not None or v is None else str(v) for k, v in it.items()]
                                       for it in items]
        if "device" not in params:                   # a missing figure (cid: no pace) is an empty field
            assert any("" in r[2:] for r in rows[1:]), params
    it = client(app_store, "ian")
    dev = list(csv.DictReader(io.StringIO(it.get("/api/devices?format=csv").text)))
    assert {d["device_id"] for d in dev} == {"dev-1", "dev-2", "dev-3"}
    assert all(d["tone_model"] == "tone-test 0" for d in dev)
    asg = list(csv.DictReader(io.StringIO(it.get("/api/assignments?format=csv").text)))
    assert len(asg) == 3 and set(asg[0]) >= {"device_id", "agent_id", "valid_from", "valid_to"}


def test_registry_api_for_it_and_backfill_of_existing_calls(sqlite_store):
    # calls stored before the dashboard existed get their facts when the app starts
    sqlite_store.upsert_calls([call("old-1", "dev-9", "2026-11-01T08:00:00Z")])
    Users(sqlite_store).add("ian", "it", PW)
    it = client(sqlite_store, "ian")
    assert it.post("/api/teams", json={"team_id": "t1", "name": "Team one"}).status_code == 201
    assert it.post("/api/agents", json={"agent_id": "zoe", "name": "Zoe", "team_id": "t1"}).status_code == 201
    assert it.post("/api/agents", json={"agent_id": "bad id!", "name": "X"}).status_code == 400
    assert it.post("/api/agents", json={"agent_id": "yan", "name": "Y", "team_id": "nope"}).status_code == 400
    r = it.post("/api/assignments", json={"device_id": "dev-9", "agent_id": "zoe", "valid_from": "2026-10-01"})
    assert r.status_code == 201 and r.json()["items"][0]["agent_id"] == "zoe"
    q = Queries(sqlite_store)
    c = q.get_call("old-1")
    assert c["agent_id"] == "zoe" and c["customer_backchannels"] == 4 and c["cues_pace"] == 1
    assert it.get("/api/agents").json()["items"][0]["device_id"] == "dev-9"
    dev = it.get("/api/devices").json()["items"][0]
    assert dev["agent_id"] == "zoe" and dev["pipeline"] == "pacelight test"


def test_users_cli(tmp_path):
    db = f"sqlite:///{tmp_path / 'u.sqlite'}"
    env = dict(os.environ, PACELIGHT_DATA_DIR=str(tmp_path))

    def run(*args, stdin=""):
        return subprocess.run([PYTHON, "-m", "pacelight.cli", "users", *args], input=stdin, text=True,
                              capture_output=True, env=env, timeout=60)

    r = run("add", "amy", "--role", "supervisor", "--db", db, "--password-stdin", stdin="s3cret-pass\n")
    assert r.returncode == 0, r.stderr
    r = run("add", "amy", "--role", "it", "--db", db, "--password-stdin", stdin="s3cret-pass\n")
    assert r.returncode == 2 and "exists" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert run("add", "ben", "--role", "it", "--db", db, "--password-stdin", stdin="short\n").returncode == 2
    assert run("add", "ben", "--role", "it", "--db", db).returncode == 2        # no tty, no --password-stdin
    assert run("passwd", "amy", "--db", db, "--password-stdin", stdin="new-pass-123\n").returncode == 0
    r = run("list", "--db", db, "--json")
    assert r.returncode == 0 and [(u["username"], u["role"]) for u in __import__("json").loads(r.stdout)] == [
        ("amy", "supervisor")]
    from pacelight_host.store import Store

    store = Store.open(db)
    try:
        assert Users(store).authenticate("amy", "new-pass-123") is not None
    finally:
        store.close()


def test_optional_sections_render_when_present():
    from conftest import summary_dict
    from pacelight_host.dashboard.pages import call_detail

    s = summary_dict("r-1", "dev-1", schema="pacelight.call-summary/1.1",
                     call_state={"hold_s": 12.0, "ivr_s": 0.0, "mute_s": 3.0},
                     rapport={"mirroring_ratio": 0.42, "name_uses": 2})
    html = call_detail({"call_id": "r-1", "device_id": "dev-1", "agent_id": None, "agent_name": None,
                        "started_at": "2026-11-23T09:00:00.000000Z", "summary": s})
    assert 'id="section-rapport"' in html and "42 %" in html and "name uses" in html
    assert 'id="section-call_state"' in html and "12.00 s" in html
    assert "syl/s" in html and "words per minute" not in html


def test_range_defaults_to_recent_days():
    from pacelight_host.api.queries import Range

    r = Range.resolve(None, "2026-11-23")
    assert r.until == utc("2026-11-24T00:00:00Z") and r.since == r.until - timedelta(days=30)


def test_aggregate_csv_text_of_missing_figures_and_odd_keys():
    # no key (calls at an empty desk), a key the csv module must quote, a missing figure
    row = (None, "2026-10", 3, 1.25, None, 4.1, 4.8, 0.8542, 0.3333, 1.5, 2.0, 1.0, 0.5, 2.0, 1.0, 20.5, 33.0,
           0.2, 0.6, 0.2, 1.0, 1, 0, 2, 0)
    text = figures_csv([row, ("a,b", *row[1:]), ("ann", *row[1:4], 0.6, *row[5:])])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][:6] == ["", "2026-10", "3", "1.250", "", "4.100"] and rows[1][-5:] == ["1.000", "1", "0", "2", "0"]
    assert rows[2][0] == "a,b" and rows[2][1:] == rows[1][1:]
    assert rows[3][0] == "ann" and rows[3][4] == "0.6000" and len(rows) == 4
