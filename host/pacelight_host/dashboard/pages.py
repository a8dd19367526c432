"""HTML pages (server-side rendered; every value escaped). Units: pace in syl/s, ratios in %."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import urlencode

from pacelight_host.dashboard import charts

CSS = """
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#1e293b;background:#f1f5f9}header{background:#0f172a;color:#e2e8f0;padding:10px 24px;display:flex;
gap:20px;align-items:center}header a{color:#cbd5e1;text-decoration:none}header a.on{color:#fff;font-weight:600}
header .me{margin-left:auto;display:flex;gap:10px;align-items:center}header form{margin:0}
.brand{font-weight:700;color:#fff;margin-right:10px}main{padding:20px 24px;max-width:1200px;margin:auto}
h1{font-size:20px;margin:4px 0 14px}h2{font-size:15px;margin:18px 0 8px;color:#334155}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;
padding:12px 14px;min-width:150px}.card .v{font-size:22px;font-weight:600}.card .l{color:#64748b;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(470px,1fr));gap:14px}
.panel{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}th,td{padding:5px 8px;
border-bottom:1px solid #e2e8f0;text-align:left;white-space:nowrap}th{background:#f8fafc;color:#475569;
font-weight:600;white-space:normal;vertical-align:bottom}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}a{color:#1d4ed8}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin-bottom:12px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#475569}
input,select,button{font:inherit;padding:4px 6px;border:1px solid #cbd5e1;border-radius:5px;background:#fff}
button{background:#1d4ed8;color:#fff;border-color:#1d4ed8;cursor:pointer}header button{background:#334155;
border-color:#475569}.muted{color:#64748b}.err{color:#b91c1c}.ok{color:#15803d}
.chart text.tick{font-size:10px;fill:#64748b}.chart text.axis{font-size:11px;fill:#334155}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px}.on-line{background:#dcfce7;
color:#166534}.off-line{background:#fee2e2;color:#991b1b}.login{max-width:340px;margin:80px auto;
background:#fff;padding:24px;border-radius:10px;border:1px solid #e2e8f0}.login label{display:block;margin:10px 0}
.login input{width:100%}.pager{margin:10px 0;display:flex;gap:12px;align-items:center}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:0}dl.kv dt{color:#64748b}
"""

NAV = (("/", "Overview", None), ("/calls", "Calls", "supervisor"), ("/agents", "Agents", "supervisor"),
       ("/fleet", "Fleet", "it"), ("/admin", "Agents & desks", "it"))


def e(v: object) -> str:
    return escape("" if v is None else str(v))


def pct(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f} %"


def num(v: float | None, unit: str = "", digits: int = 1) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" + (f" {unit}" if unit else "")


def layout(title: str, body: str, user=None, active: str = "") -> str:
    nav = ""
    if user is not None:
        links = "".join(f'<a href="{h}" class="{"on" if h == active else ""}">{t}</a>' for h, t, role in NAV
                        if role is None or role == user.role)
        nav = (f'{links}<span class="me"><span class="muted">{e(user.username)} ({e(user.role)})</span>'
               '<form method="post" action="/logout"><button type="submit">Log out</button></form></span>')
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{e(title)} · pacelight</title>'
            f'<style>{CSS}</style></head><body><header><span class="brand">pacelight</span>{nav}</header>'
            f'<main>{body}</main></body></html>')


def login_page(error: str = "", next_url: str = "/") -> str:
    err = f'<p class="err" id="login-error">{e(error)}</p>' if error else ""
    body = (f'<form class="login" method="post" action="/login"><h1>Sign in</h1>{err}'
            f'<input type="hidden" name="next" value="{e(next_url)}">'
            '<label>User name<input name="username" autocomplete="username" required autofocus></label>'
            '<label>Password<input name="password" type="password" autocomplete="current-password" required>'
            '</label><button type="submit">Sign in</button></form>')
    return layout("Sign in", body)


def table(headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]], *, tid: str = "") -> str:
    """``headers``: (title, numeric). Cells are already-escaped HTML."""
    th = "".join(f'<th class="{"n" if n else ""}">{e(h)}</th>' for h, n in headers)
    body = "".join("<tr>" + "".join(f'<td class="{"n" if headers[i][1] else ""}">{c}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f'<table id="{e(tid)}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def range_form(action: str, since: str, until: str, extra: str = "") -> str:
    return (f'<form class="filters" method="get" action="{e(action)}">{extra}'
            f'<label>From<input type="date" name="since" value="{e(since)}"></label>'
            f'<label>To (incl.)<input type="date" name="until" value="{e(until)}"></label>'
            '<button type="submit">Show</button></form>')


def cards(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(f'<div class="card"><div class="v">{v}</div><div class="l">{e(lab)}'
                                           '</div></div>' for lab, v in items) + "</div>"


AGG_HEADERS = (("Calls", True), ("Hours", True), ("Talk ratio", True), ("Pace", True), ("vs target", True),
               ("Overtalk / call", True), ("Interrupts agent / cust. per call", True),
               ("Backchannels agent / cust. per call", True), ("Longest monologue", True),
               ("Tone high", True), ("Cues / call", True))


def agg_cells(a: dict) -> list[str]:
    return [str(a["calls"]), num(a["hours"]), pct(a["talk_ratio"]), num(a["pace_syl_s"], "syl/s"),
            pct(a["pace_vs_target"]), num(a["overtalk_per_call"]),
            f'{num(a["agent_interruptions_per_call"])} / {num(a["customer_interruptions_per_call"])}',
            f'{num(a["agent_backchannels_per_call"])} / {num(a["customer_backchannels_per_call"])}',
            num(a["monologue_max_s"], "s", 0), pct(a["tone_high"]), num(a["cues_per_call"])]


def trend_charts(prefix: str, rows: Sequence[dict], pace_target: float) -> str:
    labels = [r["period"] for r in rows]

    def col(k: str, scale: float = 1.0) -> list[float | None]:
        return [None if r[k] is None else r[k] * scale for r in rows]

    parts = [
        ("Talk ratio (agent share of talk)", charts.line_chart(f"{prefix}-talk-ratio", labels,
                                                               [("talk ratio", col("talk_ratio", 100))],
                                                               y_label="agent talk, %", y_max=100)),
        ("Pace", charts.line_chart(f"{prefix}-pace", labels, [("pace", col("pace_syl_s"))], y_label="pace, syl/s",
                                   target=pace_target, target_label=f"target {pace_target:.1f} syl/s")),
        ("Overtalk and interruptions per call", charts.line_chart(
            f"{prefix}-overtalk", labels, [("overtalk", col("overtalk_per_call")),
                                           ("agent interrupts", col("agent_interruptions_per_call")),
                                           ("customer interrupts", col("customer_interruptions_per_call"))],
            y_label="events per call")),
        ("Agent tone", charts.tone_bars(f"{prefix}-tone", labels,
                                        [(r["tone_low"], r["tone_neutral"], r["tone_high"]) for r in rows])),
    ]
    return '<div class="grid">' + "".join(f'<div class="panel"><h2>{e(t)}</h2>{c}</div>' for t, c in parts) + "</div>"


def call_rows(rows: Sequence[dict]) -> tuple[tuple, list[list[str]]]:
    headers = (("Started (UTC)", False), ("Agent", False), ("Device", False), ("Duration", True),
               ("Talk ratio", True), ("Pace", True), ("Overtalk", True), ("Interrupts a/c", True),
               ("Tone high", True), ("Cues", True))
    out = []
    for r in rows:
        agent = (f'<a href="/agents/{e(r["agent_id"])}">{e(r.get("agent_name") or r["agent_id"])}</a>'
                 if r["agent_id"] else '<span class="muted">unassigned</span>')
        out.append([f'<a href="/calls/{e(r["call_id"])}">{e(r["started_at"][:16].replace("T", " "))}</a>', agent,
                    e(r["device_id"]), num(r["duration_s"] / 60, "min"), pct(r["agent_ratio"]),
                    num(r["agent_pace_syl_s"], "syl/s"), str(r["overtalk_events"]),
                    f'{r["agent_interruptions"]} / {r["customer_interruptions"]}', pct(r["agent_tone_high"]),
                    str(r["cue_count"])])
    return headers, out


def qs(params: dict) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


KNOWN_SECTIONS = {"schema", "call_id", "device_id", "started_at", "duration_s", "talk", "overtalk", "pace",
                  "monologue", "tone", "cues", "model", "segments", "overlaps", "call_state", "latency", "partial"}


def kv(d: dict) -> str:
    items = []
    for k, v in d.items():
        if isinstance(v, float):
            s = pct(v) if ("ratio" in k or k in ("low", "neutral", "high")) else num(v, "s" if k.endswith("_s") else "", 2)
        elif isinstance(v, dict):
            s = kv(v)
        else:
            s = e(v)
        items.append(f"<dt>{e(k.replace('_', ' '))}</dt><dd>{s}</dd>")
    return '<dl class="kv">' + "".join(items) + "</dl>"


def call_detail(c: dict) -> str:
    s = c["summary"]
    t, o, p, m = s["talk"], s["overtalk"], s["pace"], s["monologue"]
    agent = (f'<a href="/agents/{e(c["agent_id"])}">{e(c.get("agent_name") or c["agent_id"])}</a>'
             if c["agent_id"] else "unassigned")
    head = (f'<h1>Call {e(c["call_id"])}</h1><p class="muted">{e(c["started_at"][:19].replace("T", " "))} UTC · '
            f'device {e(c["device_id"])} · agent {agent} · {num(s["duration_s"] / 60, "min")}'
            f'{" · partial" if s.get("partial") else ""}</p>')
    body = head + cards([
        ("talk ratio (agent)", pct(t["agent_ratio"])), ("agent pace", num(p["agent_syl_s"], "syl/s")),
        ("customer pace", num(p["customer_syl_s"], "syl/s")), ("overtalk events", str(o["events"])),
        ("interruptions agent / customer", f'{o["agent_interruptions"]} / {o["customer_interruptions"]}'),
        ("backchannels agent / customer", f'{o["agent_backchannels"]} / {o["customer_backchannels"]}'),
        ("longest monologue agent / customer", f'{m["agent_longest_s"]:.0f} / {m["customer_longest_s"]:.0f} s'),
    ])
    if s.get("segments") or s.get("overlaps") or s.get("cues"):
        note = "" if s.get("segments") else '<p class="muted">No talk segments were sent for this call.</p>'
        body += (f'<div class="panel" style="margin-top:14px"><h2>Timeline</h2>{note}{charts.timeline(s)}'
                 '<p class="muted">Overlaps: <span style="color:#dc2626">■</span> interruption · '
                 '<span style="color:#16a34a">■</span> backchannel · <span style="color:#a8a29e">■</span> other '
                 'overlap · cues: <span style="color:#7c3aed">■</span> LED cue on</p></div>')
    tone_rows = [[e(party), pct(s["tone"][party]["low"]), pct(s["tone"][party]["neutral"]),
                  pct(s["tone"][party]["high"]), num(s["tone"][party]["mean_score"], digits=2)]
                 for party in ("agent", "customer")]
    body += '<div class="grid" style="margin-top:14px"><div class="panel"><h2>Tone</h2>' + table(
        (("Party", False), ("Low", True), ("Neutral", True), ("High", True), ("Mean score", True)), tone_rows) + "</div>"
    body += '<div class="panel"><h2>Talk</h2>' + kv({"agent_s": t["agent_s"], "customer_s": t["customer_s"],
                                                      "silence_s": t["silence_s"], "overlap_s": t["overlap_s"]}) + "</div>"
    for key, title in (("call_state", "Call state"), ("latency", "Response latency"), ("rapport", "Rapport")):
        if isinstance(s.get(key), dict):
            body += f'<div class="panel" id="section-{key}"><h2>{title}</h2>{kv(s[key])}</div>'
    for key in sorted(set(s) - KNOWN_SECTIONS - {"rapport"}):
        if isinstance(s[key], dict):
            body += f'<div class="panel" id="section-{e(key)}"><h2>{e(key.replace("_", " "))}</h2>{kv(s[key])}</div>'
    cue_rows = [[num(q["t"], "s"), e(q["kind"]), e(q["state"])] for q in s.get("cues", [])]
    body += '<div class="panel"><h2>Cues</h2>' + (table((("t", True), ("Kind", False), ("State", False)), cue_rows)
                                                  if cue_rows else '<p class="muted">No cues.</p>') + "</div>"
    body += f'<div class="panel"><h2>Model</h2>{kv(s["model"])}</div></div>'
    return body
