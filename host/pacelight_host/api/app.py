"""FastAPI app: JSON/CSV API under ``/api``, HTML dashboard pages, login/logout."""

# No "from __future__ import annotations" here: FastAPI resolves the closure-local dependency
# annotations (Annotated[User, Depends(...)]) at definition time.


import csv
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pacelight.errors import InputError
from pydantic import BaseModel, Field

from pacelight_host.api.auth import User, Users
from pacelight_host.api.queries import FIGURE_FORMATS, FIGURES, PRECISION, CallQuery, Queries, Range, parse_ts
from pacelight_host.dashboard import charts, pages
from pacelight_host.store import Store, iso

log = logging.getLogger(__name__)

COOKIE = "pacelight_session"


def _default_pace_target() -> float:
    from pacelight.pace.targets import language_target_syl_s

    return language_target_syl_s("en")


@dataclass(frozen=True)
class DashboardSettings:
    pace_target_syl_s: float = field(default_factory=_default_pace_target)
    session_ttl_s: float = 12 * 3600.0
    offline_after_s: float = 600.0        # a device without status that was silent this long is offline
    default_range_days: int = 30

    def __post_init__(self) -> None:
        if not 1.0 <= self.pace_target_syl_s <= 12.0:
            raise ValueError("pace_target_syl_s must be in [1, 12]")
        if self.session_ttl_s <= 0 or self.offline_after_s <= 0 or self.default_range_days <= 0:
            raise ValueError("session_ttl_s, offline_after_s and default_range_days must be positive")


class LoginBody(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class TeamBody(BaseModel):
    team_id: str
    name: str = Field(min_length=1, max_length=200)


class AgentBody(BaseModel):
    agent_id: str
    name: str = Field(min_length=1, max_length=200)
    team_id: str | None = None


class AssignmentBody(BaseModel):
    device_id: str
    agent_id: str | None = Field(default=None, description="null: nobody sits at this desk from valid_from on")
    valid_from: str | None = Field(default=None, description="ISO 8601 UTC or YYYY-MM-DD; default now")


class _PageAuth(Exception):
    def __init__(self, status: int, path: str, user: User | None = None) -> None:
        self.status, self.path, self.user = status, path, user


def _csv(rows: list[dict], filename: str) -> Response:
    seen: dict[str, None] = {}           # columns in first-seen order (rows of one kind share them)
    for r in rows:
        seen.update(dict.fromkeys(r))
    cols = list(seen)
    return _csv_table(cols, ([json.dumps(v) if isinstance(v, (dict, list)) else v for v in (r.get(k) for k in cols)]
                             for r in rows), filename)


def _csv_table(columns: Sequence[str], rows: Iterable[Sequence], filename: str) -> Response:
    """CSV of plain rows (None → empty field, floats as repr) — the csv module's C writer."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return _csv_response(buf.getvalue(), filename)


def _csv_response(body: str, filename: str) -> Response:
    """A CSV download named ``filename``.csv."""
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})


_AGGREGATES_DOC = (
    "Per agent (`by=agents`), per team (`teams`) or overall (`all`), per day, ISO week or month (or the "
    "whole range without `period`). Ratios 0..1, pace in syl/s, seconds, hours, rates per call.\n\n"
    "Each figure has a fixed precision (decimal places; rounded half up): "
    + ", ".join(f"`{k}` {d}" for k, d in PRECISION.items() if d is not None)
    + "; `calls` and the cue counts are integers. JSON and CSV carry the same values; the CSV writes "
    "each number with exactly its figure's decimals.")

_FIGURE_ROW = ",".join(FIGURE_FORMATS) + "\n"


class _Lines(list):
    """A csv.writer target collecting each written row as one string."""

    write = list.append


def figures_csv(rows: list[tuple]) -> str:
    """CSV of aggregate tuples (:data:`FIGURES` order) with :data:`FIGURE_FORMATS`: numbers with
    exactly their figure's decimals — the same values as the JSON, which carries their shortest
    form — None → empty. One format operation per row; rows with a missing figure, a missing key
    or period, or a key the csv module would quote take the csv writer."""
    out = _Lines()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FIGURES)
    n = len(out)
    plain = True
    for k in {r[0] for r in rows}:       # keys are IDs: nothing to quote, normally
        if k is not None:
            w.writerow([k])
            plain &= out.pop() == k + "\n"
    for r in rows:
        if plain and r[0] is not None and r[1] is not None:
            try:
                out.append(_FIGURE_ROW % r)
                continue
            except TypeError:            # a None figure (e.g. no pace measured)
                pass
        w.writerow(["" if v is None else f % v for f, v in zip(FIGURE_FORMATS, r, strict=True)])
    if len(out) != n + len(rows):
        raise RuntimeError("aggregate CSV lost rows")
    return "".join(out)


def _out(data: Any, rows: list[dict], fmt: str | None, filename: str) -> Any:
    if fmt == "csv":
        return _csv(rows, filename)
    if fmt not in (None, "", "json"):
        raise HTTPException(400, "format must be json or csv")
    return data


def build_app(store: Store, settings: DashboardSettings | None = None) -> FastAPI:
    cfg = settings or DashboardSettings()
    q = Queries(store, pace_target_syl_s=cfg.pace_target_syl_s)
    users = Users(store, session_ttl_s=cfg.session_ttl_s)
    app = FastAPI(title="pacelight aggregator API", version="1",
                  description="Call summaries, aggregates per agent and team, devices, agents/teams/desk "
                  "assignments. Log in with POST /api/login (cookie session). Every list takes "
                  "`?format=csv`. Units: seconds, pace in syl/s, ratios 0..1.")
    app.state.queries, app.state.users, app.state.settings = q, users, cfg

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: InputError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(_PageAuth)
    async def _page_auth(request: Request, exc: _PageAuth):
        if exc.status == 401:
            return RedirectResponse("/login?" + pages.qs({"next": exc.path}), status_code=303)
        return HTMLResponse(pages.layout("Not allowed", '<h1>Not allowed</h1><p>This page is for another role.'
                                         ' <a href="/">Back to the overview</a></p>', exc.user), status_code=403)

    # -- auth dependencies -----------------------------------------------------------------
    def _token(request: Request) -> str | None:
        tok = request.cookies.get(COOKIE)
        auth = request.headers.get("authorization", "")
        if not tok and auth.lower().startswith("bearer "):
            tok = auth[7:].strip()
        return tok

    def _user(request: Request) -> User | None:
        return users.session_user(_token(request))

    def api_user(*roles: str):
        def dep(request: Request) -> User:
            u = _user(request)
            if u is None:
                raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Bearer"})
            if roles and u.role not in roles:
                raise HTTPException(403, f"needs role {' or '.join(roles)}")
            return u
        return dep

    def page_user(*roles: str):
        def dep(request: Request) -> User:
            u = _user(request)
            if u is None:
                raise _PageAuth(401, request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            if roles and u.role not in roles:
                raise _PageAuth(403, request.url.path, u)
            return u
        return dep

    anyone_api, sup_api, it_api = api_user(), api_user("supervisor"), api_user("it")
    anyone_page, sup_page, it_page = page_user(), page_user("supervisor"), page_user("it")

    def _same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, "cross-origin request refused")

    def _set_cookie(resp: Response, request: Request, token: str) -> None:
        resp.set_cookie(COOKIE, token, max_age=int(cfg.session_ttl_s), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")

    # -- open ------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        store._execute("SELECT 1").fetchone()
        return {"status": "ok"}

    # -- API: session ------------------------------------------------------------------------
    @app.post("/api/login", tags=["auth"])
    def api_login(body: LoginBody, request: Request) -> JSONResponse:
        _same_origin(request)
        u = users.authenticate(body.username, body.password)
        if u is None:
            raise HTTPException(401, "wrong user name or password")
        token = users.create_session(u)
        resp = JSONResponse({"username": u.username, "role": u.role, "token": token})
        _set_cookie(resp, request, token)
        return resp

    @app.post("/api/logout", tags=["auth"])
    def api_logout(request: Request) -> JSONResponse:
        users.end_session(_token(request))
        resp = JSONResponse({"status": "logged out"})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @app.get("/api/me", tags=["auth"])
    def api_me(*, u: Annotated[User, Depends(anyone_api)]) -> dict:
        return {"username": u.username, "role": u.role}

    # -- API: calls and aggregates -----------------------------------------------------------
    def _cq(agent, team, device, since, until, limit=50, offset=0) -> CallQuery:
        return CallQuery(agent_id=agent, team_id=team, device_id=device, since=parse_ts(since),
                         until=parse_ts(until, end=True), limit=limit, offset=offset)

    @app.get("/api/calls", tags=["calls"])
    def api_calls(*, agent: str | None = None, team: str | None = None, device: str | None = None,
                  since: str | None = Query(None, description="YYYY-MM-DD or ISO 8601, inclusive"),
                  until: str | None = Query(None, description="YYYY-MM-DD (whole day included) or ISO 8601"),
                  limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0),
                  format: str | None = Query(None, pattern="^(json|csv)$"), u: Annotated[User, Depends(sup_api)]):
        total, rows = q.list_calls(_cq(agent, team, device, since, until, limit, offset))
        return _out({"total": total, "limit": limit, "offset": offset, "items": rows}, rows, format, "calls")

    @app.get("/api/calls/{call_id}", tags=["calls"])
    def api_call(*, call_id: str, u: Annotated[User, Depends(sup_api)]) -> dict:
        c = q.get_call(call_id)
        if c is None:
            raise HTTPException(404, "no such call")
        return c

    @app.get("/api/aggregates/{by}", tags=["aggregates"], description=_AGGREGATES_DOC)
    def api_aggregates(*, by: str, period: str | None = Query(None, pattern="^(day|week|month)$"),
                       agent: str | None = None, team: str | None = None, device: str | None = None,
                       since: str | None = None, until: str | None = None,
                       format: str | None = Query(None, pattern="^(json|csv)$"), u: Annotated[User, Depends(sup_api)]):
        """Per agent (`by=agents`), per team (`teams`) or overall (`all`), per day, ISO week or month
        (or the whole range without `period`). Ratios 0..1, pace in syl/s, counts per call."""
        group = {"agents": "agent", "teams": "team", "all": "all"}.get(by)
        if group is None:
            raise HTTPException(404, "use /api/aggregates/agents, /teams or /all")
        cq = _cq(agent, team, device, since, until)
        if format == "csv":       # lines written by SQLite, or tuples from the query: no dict per row
            lines = q.aggregate_csv_lines(group, period, cq)
            body = (figures_csv(q.aggregate_rows(group, period, cq)) if lines is None
                    else "\n".join([",".join(FIGURES), *lines, ""]))
            return _csv_response(body, f"aggregates-{by}")
        rows = q.aggregate(group, period, cq)
        return _out({"by": group, "period": period, "items": rows}, rows, format, f"aggregates-{by}")

    # -- API: devices and registry -------------------------------------------------------------
    @app.get("/api/devices", tags=["devices"])
    def api_devices(*, format: str | None = Query(None, pattern="^(json|csv)$"), u: Annotated[User, Depends(it_api)]):
        rows = q.devices(cfg.offline_after_s)
        return _out({"items": rows}, rows, format, "devices")

    @app.get("/api/quarantine", tags=["devices"])
    def api_quarantine(*, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                       format: str | None = Query(None, pattern="^(json|csv)$"), u: Annotated[User, Depends(it_api)]):
        rows = store.list_quarantine(limit, offset)
        return _out({"total": store.count_quarantine(), "items": rows}, rows, format, "quarantine")

    @app.get("/api/teams", tags=["registry"])
    def api_teams(*, format: str | None = Query(None, pattern="^(json|csv)$"), u: Annotated[User, Depends(anyone_api)]):
        rows = q.teams()
        return _out({"items": rows}, rows, format, "teams")

    @app.post("/api/teams", tags=["registry"], status_code=201)
    def api_add_team(*, body: TeamBody, request: Request, u: Annotated[User, Depends(it_api)]) -> dict:
        _same_origin(request)
        q.upsert_team(body.team_id, body.name)
        return {"team_id": body.team_id, "name": body.name}

    @app.get("/api/agents", tags=["registry"])
    def api_agents(*, team: str | None = None, format: str | None = Query(None, pattern="^(json|csv)$"),
                   u: Annotated[User, Depends(anyone_api)]):
        rows = q.agents(team)
        return _out({"items": rows}, rows, format, "agents")

    @app.post("/api/agents", tags=["registry"], status_code=201)
    def api_add_agent(*, body: AgentBody, request: Request, u: Annotated[User, Depends(it_api)]) -> dict:
        _same_origin(request)
        q.upsert_agent(body.agent_id, body.name, body.team_id)
        return body.model_dump()

    @app.get("/api/assignments", tags=["registry"])
    def api_assignments(*, device: str | None = None, agent: str | None = None,
                        format: str | None = Query(None, pattern="^(json|csv)$"), u: Annotated[User, Depends(it_api)]):
        rows = q.assignments(device, agent)
        return _out({"items": rows}, rows, format, "assignments")

    @app.post("/api/assignments", tags=["registry"], status_code=201)
    def api_assign(*, body: AssignmentBody, request: Request, u: Annotated[User, Depends(it_api)]) -> dict:
        """Seat an agent at a device from `valid_from` on (closing the previous assignment);
        calls from then on are attributed to that agent (stored calls are re-attributed)."""
        _same_origin(request)
        q.assign(body.device_id, body.agent_id, parse_ts(body.valid_from))
        return {"items": q.assignments(device_id=body.device_id)}

    # -- pages: login --------------------------------------------------------------------------
    async def _form(request: Request) -> dict[str, str]:
        raw = (await request.body())[:65536].decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def _safe_next(n: str | None) -> str:
        return n if n and n.startswith("/") and not n.startswith("//") else "/"

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(next: str = "/") -> HTMLResponse:
        return HTMLResponse(pages.login_page(next_url=_safe_next(next)))

    @app.post("/login", include_in_schema=False)
    async def login_submit(request: Request):
        _same_origin(request)
        f = await _form(request)
        from starlette.concurrency import run_in_threadpool

        u = await run_in_threadpool(users.authenticate, f.get("username", "")[:64], f.get("password", "")[:1024])
        if u is None:
            return HTMLResponse(pages.login_page("Wrong user name or password.", _safe_next(f.get("next"))),
                                status_code=401)
        token = await run_in_threadpool(users.create_session, u)
        resp = RedirectResponse(_safe_next(f.get("next")), status_code=303)
        _set_cookie(resp, request, token)
        return resp

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request):
        users.end_session(_token(request))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # -- pages ---------------------------------------------------------------------------------
    def _range(since: str | None, until: str | None) -> tuple[Range, str, str]:
        try:
            r = Range.resolve(since, until, cfg.default_range_days)
        except InputError:
            r = Range.resolve(None, None, cfg.default_range_days)
        return r, r.since.date().isoformat(), (r.until - timedelta(days=1)).date().isoformat()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(*, since: str | None = None, until: str | None = None, u: Annotated[User, Depends(anyone_page)]):
        rng, s, un = _range(since, until)
        cq = CallQuery(since=rng.since, until=rng.until)
        tot = q.aggregate("all", None, cq)
        t = tot[0] if tot else None
        body = f"<h1>Overview</h1>{pages.range_form('/', s, un)}"
        if t:
            body += pages.cards([("calls", str(t["calls"])), ("talk ratio (agent)", pages.pct(t["talk_ratio"])),
                                 ("agent pace", pages.num(t["pace_syl_s"], "syl/s")),
                                 ("pace vs target", pages.pct(t["pace_vs_target"])),
                                 ("overtalk per call", pages.num(t["overtalk_per_call"])),
                                 ("agent interruptions per call", pages.num(t["agent_interruptions_per_call"]))])
        else:
            body += '<p class="muted">No calls in this range.</p>'
        devs = q.devices(cfg.offline_after_s)
        online = sum(1 for d in devs if d["online"])
        body += f'<p class="muted" id="fleet-line">Devices: {online} online of {len(devs)}.</p>'
        teams = {tm["team_id"]: tm["name"] for tm in q.teams()}
        rows = q.aggregate("team", None, cq)
        link = u.role == "supervisor"
        trs = [[(f'<a href="/teams/{pages.e(r["key"])}?{pages.qs({"since": s, "until": un})}">'
                 f'{pages.e(teams.get(r["key"], r["key"]))}</a>' if r["key"] and link else
                 pages.e(teams.get(r["key"], r["key"]) if r["key"] else "no team / unassigned")),
                *pages.agg_cells(r)] for r in rows]
        body += "<h2>Teams</h2>" + pages.table((("Team", False), *pages.AGG_HEADERS), trs, tid="teams-table")
        by_day = {d["period"]: d for d in q.aggregate("all", "day", cq)}
        daily = []                       # every day of the range, so the x axis is linear in time
        day = rng.since
        while by_day and day < rng.until:
            k = day.date().isoformat()
            daily.append(by_day.get(k, {"period": k, "calls": 0, "talk_ratio": None}))
            day += timedelta(days=1)
        if daily:
            body += '<div class="grid" style="margin-top:14px">' + "".join(
                f'<div class="panel"><h2>{title}</h2>{c}</div>' for title, c in (
                    ("Calls per day", charts.line_chart("calls-per-day", [d["period"][5:] for d in daily],
                                                        [("calls", [float(d["calls"]) for d in daily])],
                                                        y_label="calls")),
                    ("Talk ratio per day", charts.line_chart(
                        "talk-ratio-per-day", [d["period"][5:] for d in daily],
                        [("talk ratio", [None if d["talk_ratio"] is None else 100 * d["talk_ratio"] for d in daily])],
                        y_label="agent talk, %", y_max=100)))) + "</div>"
        if link:
            body += (f'<p><a href="/api/aggregates/teams?{pages.qs({"since": s, "until": un, "format": "csv"})}">'
                     'Export teams as CSV</a> · <a href="/api/aggregates/agents?'
                     f'{pages.qs({"since": s, "until": un, "period": "day", "format": "csv"})}">'
                     'Export agents per day as CSV</a></p>')
        return HTMLResponse(pages.layout("Overview", body, u, "/"))

    @app.get("/agents", response_class=HTMLResponse, include_in_schema=False)
    def agents_page(*, since: str | None = None, until: str | None = None, team: str | None = None,
                    u: Annotated[User, Depends(sup_page)]):
        rng, s, un = _range(since, until)
        aggs = {r["key"]: r for r in q.aggregate("agent", None, CallQuery(team_id=team, since=rng.since,
                                                                          until=rng.until))}
        empty = dict.fromkeys(("calls", "hours"), 0) | {k: None for k in (
            "talk_ratio", "pace_syl_s", "pace_vs_target", "overtalk_per_call", "agent_interruptions_per_call",
            "customer_interruptions_per_call", "agent_backchannels_per_call", "customer_backchannels_per_call",
            "monologue_max_s", "tone_high", "cues_per_call")}
        trs = [[f'<a href="/agents/{pages.e(a["agent_id"])}?{pages.qs({"since": s, "until": un})}">'
                f'{pages.e(a["name"])}</a>', pages.e(a["team_name"] or ""), pages.e(a["device_id"] or ""),
                *pages.agg_cells(aggs.get(a["agent_id"], empty))] for a in q.agents(team)]
        body = (f"<h1>Agents</h1>{pages.range_form('/agents', s, un)}"
                + pages.table((("Agent", False), ("Team", False), ("Desk", False), *pages.AGG_HEADERS), trs,
                              tid="agents-table")
                + f'<p><a href="/api/aggregates/agents?{pages.qs({"since": s, "until": un, "format": "csv"})}">'
                  'Export as CSV</a></p>')
        return HTMLResponse(pages.layout("Agents", body, u, "/agents"))

    def _trend_range(since: str | None, until: str | None) -> tuple[Range, str, str]:
        if since:
            return _range(since, until)
        r = Range.resolve(None, until, 1)
        start = (r.until - timedelta(days=1)).replace(day=1)
        for _ in range(5):
            start = (start - timedelta(days=1)).replace(day=1)
        r = Range(start, r.until)
        return r, r.since.date().isoformat(), (r.until - timedelta(days=1)).date().isoformat()

    @app.get("/agents/{agent_id}", response_class=HTMLResponse, include_in_schema=False)
    def agent_page(*, agent_id: str, since: str | None = None, until: str | None = None,
                   u: Annotated[User, Depends(sup_page)]):
        a = q.agent(agent_id)
        if a is None:
            raise HTTPException(404, "no such agent")
        rng, s, un = _trend_range(since, until)
        cq = CallQuery(agent_id=agent_id, since=rng.since, until=rng.until, limit=20)
        monthly = q.aggregate("agent", "month", cq)
        team = f' · team <a href="/teams/{pages.e(a["team_id"])}">{pages.e(a["team_name"])}</a>' if a["team_id"] else ""
        body = (f'<h1>{pages.e(a["name"])}</h1><p class="muted">agent {pages.e(agent_id)}{team} · '
                'month over month</p>' + pages.range_form(f"/agents/{agent_id}", s, un))
        if not monthly:
            body += '<p class="muted">No calls in this range.</p>'
        else:
            body += pages.trend_charts("agent", monthly, cfg.pace_target_syl_s)
            ratio_edges = [i / 10 for i in range(11)]
            pace_edges = [2.0 + 0.5 * i for i in range(13)]
            body += '<div class="grid" style="margin-top:14px">' + "".join(
                f'<div class="panel"><h2>{t}</h2>{c}</div>' for t, c in (
                    ("Talk ratio per call", charts.histogram(
                        "agent-talk-ratio-dist", ratio_edges, q.distribution("agent_ratio", cq, ratio_edges),
                        x_label="agent talk ratio, %", edge_fmt=lambda v: f"{100 * v:.0f}")),
                    ("Pace per call", charts.histogram(
                        "agent-pace-dist", pace_edges, q.distribution("agent_pace_syl_s", cq, pace_edges),
                        x_label="pace, syl/s")))) + "</div>"
            body += "<h2>Per month</h2>" + pages.table(
                (("Month", False), *pages.AGG_HEADERS), [[pages.e(r["period"]), *pages.agg_cells(r)] for r in monthly],
                tid="agent-months")
        total, calls = q.list_calls(cq)
        h, rows = pages.call_rows(calls)
        body += (f'<h2>Latest calls ({total} in range)</h2>' + pages.table(h, rows, tid="agent-calls")
                 + f'<p><a href="/calls?{pages.qs({"agent": agent_id, "since": s, "until": un})}">All calls</a> · '
                 f'<a href="/api/calls?{pages.qs({"agent": agent_id, "since": s, "until": un, "format": "csv", "limit": 1000})}">'
                 'Export calls as CSV</a> · <a href="/api/aggregates/agents?'
                 f'{pages.qs({"agent": agent_id, "since": s, "until": un, "period": "month", "format": "csv"})}">'
                 'Export months as CSV</a></p>')
        return HTMLResponse(pages.layout(a["name"], body, u, "/agents"))

    @app.get("/teams/{team_id}", response_class=HTMLResponse, include_in_schema=False)
    def team_page(*, team_id: str, since: str | None = None, until: str | None = None, u: Annotated[User, Depends(sup_page)]):
        t = q.team(team_id)
        if t is None:
            raise HTTPException(404, "no such team")
        rng, s, un = _trend_range(since, until)
        cq = CallQuery(team_id=team_id, since=rng.since, until=rng.until)
        monthly = q.aggregate("team", "month", cq)
        body = (f'<h1>Team {pages.e(t["name"])}</h1>' + pages.range_form(f"/teams/{team_id}", s, un)
                + (pages.trend_charts("team", monthly, cfg.pace_target_syl_s) if monthly
                   else '<p class="muted">No calls in this range.</p>'))
        aggs = {r["key"]: r for r in q.aggregate("agent", None, cq)}
        trs = [[f'<a href="/agents/{pages.e(a["agent_id"])}">{pages.e(a["name"])}</a>',
                *pages.agg_cells(aggs[a["agent_id"]])] for a in q.agents(team_id) if a["agent_id"] in aggs]
        body += "<h2>Agents</h2>" + pages.table((("Agent", False), *pages.AGG_HEADERS), trs, tid="team-agents")
        return HTMLResponse(pages.layout(t["name"], body, u, "/"))

    @app.get("/calls", response_class=HTMLResponse, include_in_schema=False)
    def calls_page(*, agent: str | None = None, team: str | None = None, device: str | None = None,
                   since: str | None = None, until: str | None = None, page: int = Query(1, ge=1, le=100000),
                   u: Annotated[User, Depends(sup_page)]):
        rng, s, un = _range(since, until)
        per = 50
        cq = CallQuery(agent_id=agent or None, team_id=team or None, device_id=device or None, since=rng.since,
                       until=rng.until, limit=per, offset=(page - 1) * per)
        total, calls = q.list_calls(cq)
        agents = q.agents()
        teams = q.teams()

        def sel(name: str, items: list[tuple[str, str]], cur: str | None) -> str:
            opts = "".join(f'<option value="{pages.e(v)}"{" selected" if v == cur else ""}>{pages.e(t)}</option>'
                           for v, t in items)
            return f'<label>{name.title()}<select name="{name}"><option value="">all</option>{opts}</select></label>'

        extra = (sel("agent", [(a["agent_id"], a["name"]) for a in agents], agent)
                 + sel("team", [(t["team_id"], t["name"]) for t in teams], team)
                 + f'<label>Device<input name="device" value="{pages.e(device)}" size="12"></label>')
        h, rows = pages.call_rows(calls)
        params = {"agent": agent, "team": team, "device": device, "since": s, "until": un}
        pager = f'<div class="pager"><span class="muted">{total} calls · page {page} of {max(1, -(-total // per))}</span>'
        if page > 1:
            pager += f'<a href="/calls?{pages.qs(params | {"page": page - 1})}">← newer</a>'
        if page * per < total:
            pager += f'<a href="/calls?{pages.qs(params | {"page": page + 1})}" id="next-page">older →</a>'
        pager += (f'<a href="/api/calls?{pages.qs(params | {"format": "csv", "limit": 1000, "offset": (page - 1) * per})}"'
                  ' id="calls-csv">Export CSV</a></div>')
        body = "<h1>Calls</h1>" + pages.range_form("/calls", s, un, extra) + pager + pages.table(h, rows, tid="calls-table")
        return HTMLResponse(pages.layout("Calls", body, u, "/calls"))

    @app.get("/calls/{call_id}", response_class=HTMLResponse, include_in_schema=False)
    def call_page(*, call_id: str, u: Annotated[User, Depends(sup_page)]):
        c = q.get_call(call_id)
        if c is None:
            raise HTTPException(404, "no such call")
        return HTMLResponse(pages.layout(f"Call {call_id}", pages.call_detail(c), u, "/calls"))

    @app.get("/fleet", response_class=HTMLResponse, include_in_schema=False)
    def fleet_page(*, u: Annotated[User, Depends(it_page)]):
        devs = q.devices(cfg.offline_after_s)
        trs = [[pages.e(d["device_id"]),
                f'<span class="pill {"on-line" if d["online"] else "off-line"}">{"online" if d["online"] else "offline"}'
                f'</span> <span class="muted">{pages.e(d["state"])}</span>',
                pages.e(d["last_seen"][:19].replace("T", " ")), pages.e(_age(d["last_seen_age_s"])),
                pages.e(d["firmware"] or "–"), pages.e(d["pipeline"] or "–"), pages.e(d["tone_model"] or "–"),
                pages.e(d["agent_id"] or "–"), str(d["calls_received"]),
                pages.num(d["clock_skew_s"], "s", 1)] for d in devs]
        online = sum(1 for d in devs if d["online"])
        body = ("<h1>Fleet</h1>" + pages.cards([("devices", str(len(devs))), ("online", str(online)),
                                                ("offline", str(len(devs) - online)),
                                                ("quarantined messages", str(store.count_quarantine()))])
                + "<h2>Devices</h2>" + pages.table(
                    (("Device", False), ("State", False), ("Last seen (UTC)", False), ("Ago", True),
                     ("Firmware", False), ("Pipeline", False), ("Tone model", False), ("Agent", False),
                     ("Calls", True), ("Clock skew", True)), trs, tid="devices-table")
                + '<p><a href="/api/devices?format=csv">Export devices as CSV</a> · '
                  '<a href="/api/quarantine?format=csv">Export quarantine as CSV</a></p>')
        return HTMLResponse(pages.layout("Fleet", body, u, "/fleet"))

    @app.get("/admin", response_class=HTMLResponse, include_in_schema=False)
    def admin_page(*, msg: str | None = None, err: str | None = None, u: Annotated[User, Depends(it_page)]):
        teams, agents = q.teams(), q.agents()
        team_opts = '<option value="">no team</option>' + "".join(
            f'<option value="{pages.e(t["team_id"])}">{pages.e(t["name"])}</option>' for t in teams)
        agent_opts = '<option value="">nobody</option>' + "".join(
            f'<option value="{pages.e(a["agent_id"])}">{pages.e(a["name"])}</option>' for a in agents)
        note = (f'<p class="ok">{pages.e(msg)}</p>' if msg else "") + (f'<p class="err">{pages.e(err)}</p>' if err else "")
        body = (
            f"<h1>Agents, teams and desks</h1>{note}"
            '<div class="grid"><div class="panel"><h2>Add or rename a team</h2><form class="filters" method="post" '
            'action="/admin/team"><label>Team id<input name="team_id" required></label><label>Name<input name="name" '
            'required></label><button>Save team</button></form></div>'
            '<div class="panel"><h2>Add or edit an agent</h2><form class="filters" method="post" action="/admin/agent">'
            '<label>Agent id<input name="agent_id" required></label><label>Name<input name="name" required></label>'
            f'<label>Team<select name="team_id">{team_opts}</select></label><button>Save agent</button></form></div>'
            '<div class="panel"><h2>Seat an agent at a desk</h2><form class="filters" method="post" '
            'action="/admin/assign"><label>Device<input name="device_id" required></label>'
            f'<label>Agent<select name="agent_id">{agent_opts}</select></label><label>From (UTC, empty = now)'
            '<input name="valid_from" placeholder="2026-11-23T08:00:00Z"></label><button>Assign</button></form>'
            '<p class="muted">Calls are attributed to the agent seated at the device when the call started; '
            'stored calls are re-attributed.</p></div></div>'
            "<h2>Teams</h2>" + pages.table((("Team id", False), ("Name", False), ("Agents", True)),
                                           [[pages.e(t["team_id"]), pages.e(t["name"]), str(t["agents"])] for t in teams])
            + "<h2>Agents</h2>" + pages.table((("Agent id", False), ("Name", False), ("Team", False), ("Desk", False)),
                                              [[pages.e(a["agent_id"]), pages.e(a["name"]), pages.e(a["team_name"] or ""),
                                                pages.e(a["device_id"] or "")] for a in agents], tid="admin-agents")
            + "<h2>Desk assignments</h2>" + pages.table(
                (("Device", False), ("Agent", False), ("From (UTC)", False), ("To (UTC)", False)),
                [[pages.e(r["device_id"]), pages.e(r["agent_id"]), pages.e(r["valid_from"][:19]),
                  pages.e((r["valid_to"] or "")[:19] or "now")] for r in q.assignments()], tid="assignments-table")
            + '<p><a href="/api/assignments?format=csv">Export assignments as CSV</a></p>')
        return HTMLResponse(pages.layout("Agents & desks", body, u, "/admin"))

    async def _admin_post(request: Request, action) -> RedirectResponse:
        _same_origin(request)
        f = await _form(request)
        from starlette.concurrency import run_in_threadpool

        try:
            msg = await run_in_threadpool(action, f)
        except (InputError, ValueError) as exc:
            return RedirectResponse("/admin?" + pages.qs({"err": str(exc)}), status_code=303)
        return RedirectResponse("/admin?" + pages.qs({"msg": msg}), status_code=303)

    @app.post("/admin/team", include_in_schema=False)
    async def admin_team(*, request: Request, u: Annotated[User, Depends(it_page)]):
        def act(f):
            q.upsert_team(f.get("team_id", "").strip(), f.get("name", "").strip() or f.get("team_id", ""))
            return f"team {f.get('team_id')} saved"
        return await _admin_post(request, act)

    @app.post("/admin/agent", include_in_schema=False)
    async def admin_agent(*, request: Request, u: Annotated[User, Depends(it_page)]):
        def act(f):
            q.upsert_agent(f.get("agent_id", "").strip(), f.get("name", "").strip() or f.get("agent_id", ""),
                           f.get("team_id") or None)
            return f"agent {f.get('agent_id')} saved"
        return await _admin_post(request, act)

    @app.post("/admin/assign", include_in_schema=False)
    async def admin_assign(*, request: Request, u: Annotated[User, Depends(it_page)]):
        def act(f):
            q.assign(f.get("device_id", "").strip(), f.get("agent_id") or None, parse_ts(f.get("valid_from")))
            return f"device {f.get('device_id')} assigned"
        return await _admin_post(request, act)

    return app


def _age(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} d"


__all__ = ["DashboardSettings", "build_app", "iso"]
