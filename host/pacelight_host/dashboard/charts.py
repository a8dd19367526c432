"""Small inline SVG charts: calm colours, labelled axes with units, a <title> on every point.

Every chart is an ``<svg class="chart" data-chart=NAME>``; data points are ``<circle
class="pt">`` / ``<rect class="bar">`` elements carrying ``data-value`` (what tests check).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

INK = "#334155"
GRID = "#e2e8f0"
AGENT = "#2563eb"
CUSTOMER = "#d97706"
COLOURS = ("#2563eb", "#0d9488", "#d97706", "#7c3aed", "#64748b")
TONE = {"low": "#94a3b8", "neutral": "#60a5fa", "high": "#f59e0b"}
OVERLAP = {"interruption": "#dc2626", "backchannel": "#16a34a", "overlap": "#a8a29e"}


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def _fmt(v: float) -> str:
    if abs(v) >= 10 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def line_chart(name: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *,
               y_label: str, y_max: float | None = None, target: float | None = None, target_label: str = "",
               width: int = 460, height: int = 220, fmt=_fmt) -> str:
    """Lines over periods (None = no data: the line breaks there)."""
    left, right, top, bottom = 52, 12, 16, 42
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _, s in series for v in s if v is not None]
    if target is not None:
        vals.append(target)
    ymax = y_max if y_max is not None else _nice_max(max(vals) * 1.1 if vals else 1.0)
    n = max(1, len(labels))

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + ph * (1 - min(v, ymax) / ymax)

    out = [f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {width} {height}" width="100%" '
           f'style="max-width:{width * 1.6:.0f}px" role="img" aria-label="{escape(y_label)}">']
    for k in range(5):
        v = ymax * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="{GRID}"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="tick">{fmt(v)}</text>')
    step = max(1, math.ceil(n / 8))
    for i, lab in enumerate(labels):
        if i % step == 0:
            out.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" class="tick">'
                       f'{escape(lab)}</text>')
    out.append(f'<text x="12" y="{top + ph / 2:.0f}" transform="rotate(-90 12 {top + ph / 2:.0f})" '
               f'text-anchor="middle" class="axis">{escape(y_label)}</text>')
    if target is not None:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
                   f'stroke="{INK}" stroke-dasharray="4 4" opacity="0.6"/><text x="{width - right}" '
                   f'y="{y(target) - 4:.1f}" text-anchor="end" class="tick">{escape(target_label)}</text>')
    for si, (sname, vs) in enumerate(series):
        colour = COLOURS[si % len(COLOURS)]
        path, pen = [], "M"
        for i, v in enumerate(vs):
            if v is None:
                pen = "M"
                continue
            path.append(f"{pen}{x(i):.1f},{y(v):.1f}")
            pen = "L"
        if path:
            out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for i, v in enumerate(vs):
            if v is not None:
                out.append(f'<circle class="pt" data-value="{v:.4g}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" '
                           f'fill="{colour}"><title>{escape(sname)} {escape(labels[i])}: {fmt(v)}</title></circle>')
    if len(series) > 1:
        lx = left
        for si, (sname, _) in enumerate(series):
            out.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{COLOURS[si % len(COLOURS)]}"/>'
                       f'<text x="{lx + 14}" y="{height - 5}" class="tick">{escape(sname)}</text>')
            lx += 14 + 7 * len(sname) + 16
    out.append("</svg>")
    return "".join(out)


def histogram(name: str, edges: Sequence[float], counts: Sequence[int], *, x_label: str,
              width: int = 460, height: int = 200, edge_fmt=_fmt) -> str:
    left, right, top, bottom = 44, 12, 14, 44
    pw, ph = width - left - right, height - top - bottom
    ymax = _nice_max(max(counts) if counts else 1)
    n = max(1, len(counts))
    bw = pw / n
    out = [f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {width} {height}" width="100%" '
           f'style="max-width:{width * 1.6:.0f}px" role="img" aria-label="{escape(x_label)}">']
    for k in range(3):
        v = ymax * k / 2
        yy = top + ph * (1 - v / ymax)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{GRID}"/>'
                   f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" class="tick">{_fmt(v)}</text>')
    for i, c in enumerate(counts):
        h = ph * c / ymax
        out.append(f'<rect class="bar" data-value="{c}" x="{left + i * bw + 1:.1f}" y="{top + ph - h:.1f}" '
                   f'width="{bw - 2:.1f}" height="{h:.1f}" fill="{AGENT}" opacity="0.75"><title>'
                   f'{edge_fmt(edges[i])}–{edge_fmt(edges[i + 1])}: {c} calls</title></rect>')
    step = max(1, math.ceil(len(edges) / 7))
    for i, e in enumerate(edges):
        if i % step == 0 or i == len(edges) - 1:
            out.append(f'<text x="{left + i * bw:.1f}" y="{top + ph + 16}" text-anchor="middle" class="tick">'
                       f'{edge_fmt(e)}</text>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 6}" text-anchor="middle" class="axis">'
               f'{escape(x_label)} (calls per bin)</text></svg>')
    return "".join(out)


def tone_bars(name: str, labels: Sequence[str], rows: Sequence[tuple[float | None, float | None, float | None]],
              *, width: int = 460, height: int = 220) -> str:
    """Stacked 100 % bars of low/neutral/high agent tone per period."""
    left, right, top, bottom = 52, 12, 16, 42
    pw, ph = width - left - right, height - top - bottom
    n = max(1, len(labels))
    bw = pw / n
    out = [f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {width} {height}" width="100%" '
           f'style="max-width:{width * 1.6:.0f}px" role="img" aria-label="agent tone share">']
    for k in range(5):
        yy = top + ph * (1 - k / 4)
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" class="tick">{k * 25}</text>')
    out.append(f'<text x="12" y="{top + ph / 2:.0f}" transform="rotate(-90 12 {top + ph / 2:.0f})" '
               'text-anchor="middle" class="axis">share of voiced windows, %</text>')
    step = max(1, math.ceil(n / 8))
    for i, (lab, parts) in enumerate(zip(labels, rows, strict=True)):
        if i % step == 0:
            out.append(f'<text x="{left + (i + 0.5) * bw:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                       f'class="tick">{escape(lab)}</text>')
        if any(p is None for p in parts):
            continue
        total = sum(parts) or 1.0  # type: ignore[arg-type]
        y0 = top + ph
        for kind, p in zip(("low", "neutral", "high"), parts, strict=True):
            h = ph * p / total  # type: ignore[operator]
            y0 -= h
            out.append(f'<rect class="bar" data-value="{p:.3f}" x="{left + i * bw + 2:.1f}" y="{y0:.1f}" '
                       f'width="{max(1.0, bw - 4):.1f}" height="{h:.1f}" fill="{TONE[kind]}"><title>{escape(lab)} '
                       f'{kind}: {100 * p / total:.0f} %</title></rect>')
    lx = left
    for kind in ("low", "neutral", "high"):
        out.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{TONE[kind]}"/>'
                   f'<text x="{lx + 14}" y="{height - 5}" class="tick">{kind}</text>')
        lx += 80
    out.append("</svg>")
    return "".join(out)


def timeline(summary: dict, *, width: int = 940) -> str:
    """Talk of both parties, overlaps (by kind) and cues over the call, in seconds."""
    dur = float(summary.get("duration_s") or 0.0) or 1.0
    segs = summary.get("segments") or {}
    overlaps = summary.get("overlaps") or []
    cues = summary.get("cues") or []
    left, right = 88, 16
    rows = [("agent", AGENT), ("customer", CUSTOMER), ("overlaps", INK), ("cues", INK)]
    rh, top = 22, 10
    height = top + rh * len(rows) + 40
    pw = width - left - right

    def x(t: float) -> float:
        return left + pw * max(0.0, min(t, dur)) / dur

    out = [f'<svg class="chart" data-chart="timeline" viewBox="0 0 {width} {height}" width="100%" '
           f'role="img" aria-label="call timeline">']
    for i, (lab, _) in enumerate(rows):
        yy = top + i * rh
        out.append(f'<rect x="{left}" y="{yy}" width="{pw}" height="{rh - 6}" fill="#f8fafc"/>'
                   f'<text x="{left - 8}" y="{yy + 12}" text-anchor="end" class="axis">{lab}</text>')
    for i, party in enumerate(("agent", "customer")):
        colour = rows[i][1]
        for s, e in segs.get(party, []):
            out.append(f'<rect class="seg" data-party="{party}" x="{x(s):.1f}" y="{top + i * rh}" '
                       f'width="{max(0.8, x(e) - x(s)):.1f}" height="{rh - 6}" fill="{colour}" opacity="0.8">'
                       f'<title>{party} {s:.1f}–{e:.1f} s</title></rect>')
    for o in overlaps:
        out.append(f'<rect class="ovl" data-kind="{escape(str(o.get("kind")))}" x="{x(o["start"]):.1f}" '
                   f'y="{top + 2 * rh}" width="{max(1.5, x(o["end"]) - x(o["start"])):.1f}" height="{rh - 6}" '
                   f'fill="{OVERLAP.get(o.get("kind"), INK)}"><title>{escape(str(o.get("kind")))} by '
                   f'{escape(str(o.get("by")))} {o["start"]:.1f}–{o["end"]:.1f} s</title></rect>')
    on: dict[str, float] = {}
    for c in sorted(cues, key=lambda c: c["t"]):
        if c["state"] == "on":
            on[c["kind"]] = c["t"]
        elif c["kind"] in on:
            s = on.pop(c["kind"])
            out.append(f'<rect class="cue" data-kind="{escape(c["kind"])}" x="{x(s):.1f}" y="{top + 3 * rh}" '
                       f'width="{max(1.5, x(c["t"]) - x(s)):.1f}" height="{rh - 6}" fill="#7c3aed" opacity="0.7">'
                       f'<title>{escape(c["kind"])} cue {s:.1f}–{c["t"]:.1f} s</title></rect>')
    for kind, s in on.items():
        out.append(f'<rect class="cue" data-kind="{escape(kind)}" x="{x(s):.1f}" y="{top + 3 * rh}" width="2" '
                   f'height="{rh - 6}" fill="#7c3aed"><title>{escape(kind)} cue from {s:.1f} s</title></rect>')
    ticks = _nice_max(dur / 6)
    t = 0.0
    axis_y = top + len(rows) * rh + 12
    while t <= dur + 1e-9:
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{axis_y - 8}" stroke="{GRID}"/>'
                   f'<text x="{x(t):.1f}" y="{axis_y + 4}" text-anchor="middle" class="tick">{t:.0f}</text>')
        t += ticks
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle" class="axis">'
               'time in call, s</text></svg>')
    return "".join(out)
