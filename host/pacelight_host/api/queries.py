"""Dashboard queries over the store: calls with filters, aggregates per agent/team and period,
devices, and the agents/teams/assignments registry.

Aggregates are computed in SQL as per-day sums (portable ``substr(started_at, 1, 10)`` on the
fixed-width ISO text) and folded into days, ISO weeks or months here, so ratios are always
ratios of sums (talk ratio = Σ agent talk / Σ (agent + customer talk)), never means of ratios.
Whole UTC days of a range are summed from the ``call_rollup`` table (day × agent, see
:mod:`pacelight_host.api.schema`), whole months from ``call_rollup_month``; only the partial
first/last day of a range that does not start or end at midnight is read from the call rows
(and device-filtered ranges, which the rollups do not split by). When one rollup table answers
the whole range at the requested period (e.g. per agent per day, per agent per month over whole
months), the grouping and the final figures are computed in SQL and returned as tuples (no
per-row Python work); otherwise the per-day/month sums are folded here and finished by
:meth:`Queries._finish` — the same formulas (tested against each other through the row-level
reference). ``aggregate(..., from_rows=True)`` computes the same result from the call rows alone
(the reference the rollup is tested against). Both paths round each figure to its documented
:data:`PRECISION` with the same arithmetic.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter

from pacelight.errors import InputError

from pacelight_host.api.schema import (
    ROLLUP_MEASURES,
    ensure_rollup,
    ensure_schema,
    lock_rollup,
    measures_sql,
    reattribute,
    rollup_state,
)
from pacelight_host.store import Store, iso, utcnow

log = logging.getLogger(__name__)

PERIODS = ("day", "week", "month")
MAX_PAGE = 1000
_MEASURE_NAMES = tuple(n for n, _, _ in ROLLUP_MEASURES)
_CSV_SPECIAL = frozenset(',"\r\n')        # characters the csv module quotes
if _MEASURE_NAMES != (  # Queries._finish unpacks the measures in this order
        "calls", "duration_s", "agent_talk_s", "customer_talk_s", "overlap_s", "overtalk_events",
        "agent_interruptions", "customer_interruptions", "agent_backchannels", "customer_backchannels",
        "pace_sum", "pace_n", "pace_fast_calls", "monologue_sum", "monologue_max", "tone_low_sum",
        "tone_neutral_sum", "tone_high_sum", "tone_n", "cues", "cues_overtalk", "cues_monologue", "cues_pace",
        "cues_energy"):
    raise RuntimeError("ROLLUP_MEASURES order changed: update Queries._finish")
FAST_FACTOR = 1.2          # a call is "fast" when the agent's pace exceeds 1.2 × the target
# The columns of one aggregate row (``aggregate`` dict keys, ``aggregate_rows`` tuple order, CSV header).
FIGURES = ("key", "period", "calls", "hours", "talk_ratio", "pace_syl_s", "pace_target_syl_s", "pace_vs_target",
           "pace_fast_share", "overtalk_per_call", "overlap_s_per_call", "agent_interruptions_per_call",
           "customer_interruptions_per_call", "agent_backchannels_per_call", "customer_backchannels_per_call",
           "monologue_mean_s", "monologue_max_s", "tone_low", "tone_neutral", "tone_high", "cues_per_call",
           "cues_overtalk", "cues_monologue", "cues_pace", "cues_energy")
_PER_CALL = (("overtalk_events", "overtalk_per_call"), ("overlap_s", "overlap_s_per_call"),
             ("agent_interruptions", "agent_interruptions_per_call"),
             ("customer_interruptions", "customer_interruptions_per_call"),
             ("agent_backchannels", "agent_backchannels_per_call"),
             ("customer_backchannels", "customer_backchannels_per_call"), ("monologue_sum", "monologue_mean_s"))
# the period unit of each rollup table
_UNIT = {"call_rollup": "day", "call_rollup_fleet": "day", "call_rollup_month": "month"}
# the group key of rollup rows ``r`` per grouping ('' in agent_id = nobody seated)
_ROLLUP_KEY = {"agent": "NULLIF(r.agent_id, '')", "team": "ag.team_id", "all": "''"}


def _rollup_from(table: str, by: str, where: list[str]) -> str:
    """FROM (and WHERE) clause over rollup rows ``r`` of ``table``, joined to their agents' teams for ``by='team'``."""
    return (f"FROM {table} r "
            + ("LEFT JOIN agents ag ON ag.agent_id = r.agent_id " if by == "team" else "")
            + (" WHERE " + " AND ".join(where) if where else ""))


# The documented precision of each figure (decimal places; None: exact — keys, periods, counts).
# The one place it is defined: ratios and shares 4, pace (syl/s) and per-call rates 3, hours 3,
# seconds 1. Every figure is ≥ 0 (the summary schema) and rounded half up as
# trunc(x · 10^d + 0.5) / 10^d — the same IEEE double operations in SQL (:func:`figures_sql`)
# and in Python (:func:`round_figure`, applied by ``Queries._finish``), so both paths give
# bit-identical values and JSON and CSV carry the same short numbers.
PRECISION: dict[str, int | None] = {
    "key": None, "period": None, "calls": None, "hours": 3, "talk_ratio": 4, "pace_syl_s": 3,
    "pace_target_syl_s": 3, "pace_vs_target": 4, "pace_fast_share": 4, "overtalk_per_call": 3,
    "overlap_s_per_call": 1, "agent_interruptions_per_call": 3, "customer_interruptions_per_call": 3,
    "agent_backchannels_per_call": 3, "customer_backchannels_per_call": 3, "monologue_mean_s": 1,
    "monologue_max_s": 1, "tone_low": 4, "tone_neutral": 4, "tone_high": 4, "cues_per_call": 3,
    "cues_overtalk": None, "cues_monologue": None, "cues_pace": None, "cues_energy": None}
if tuple(PRECISION) != FIGURES:
    raise RuntimeError("PRECISION must name every figure of FIGURES, in order")
_SCALES = tuple(None if d is None else float(10 ** d) for d in PRECISION.values())
# How the aggregate CSV writes each figure (printf / %-format): numbers with exactly their
# figure's decimals — the same values as the JSON, which carries their shortest form.
FIGURE_FORMATS = tuple("%s" if d is None else f"%.{d}f" for d in PRECISION.values())


def round_figure(x: float | None, decimals: int | None) -> float | None:
    """``x`` (≥ 0) rounded half up to ``decimals`` places (:data:`PRECISION`); the Python twin of
    :func:`round_sql`."""
    if x is None or decimals is None:
        return x
    s = float(10 ** decimals)
    return int(x * s + 0.5) / s


def round_sql(expr: str, decimals: int | None, dialect: str) -> str:
    """SQL of ``expr`` rounded like :func:`round_figure` (``dialect``: the store dialect's name):
    SQLite's CAST to INTEGER and PostgreSQL's TRUNC both truncate toward zero, like Python's int()."""
    if decimals is None:
        return expr
    if dialect == "sqlite":
        s = f"{10 ** decimals}.0"
        return f"CAST(({expr}) * {s} + 0.5 AS INTEGER) / {s}"
    s = f"CAST({10 ** decimals} AS DOUBLE PRECISION)"
    return f"TRUNC(({expr}) * {s} + 0.5) / {s}"


def _figure_terms(m, real: str) -> list[tuple[str, str | None]]:
    """(expression, condition) of each of FIGURES[2:] from the measure sums ``m(name)``: the
    figure is the expression where the condition holds (None: always, for calls > 0), else NULL."""
    n = m("calls")
    talk = f"{m('agent_talk_s')} + {m('customer_talk_s')}"
    paced, toned = f"{m('pace_n')} > 0", f"{m('tone_n')} > 0"
    pace = f"{m('pace_sum')} / {m('pace_n')}"
    return [(n, None), (f"{m('duration_s')} / CAST(3600 AS {real})", None),
            (f"{m('agent_talk_s')} / ({talk})", f"{talk} > 0"),
            (pace, paced),
            ("?", None),
            (f"({pace}) / ?", paced),
            (f"CAST({m('pace_fast_calls')} AS {real}) / {m('pace_n')}", paced),
            *((f"CAST({m(x)} AS {real}) / {n}", None) for x, _ in _PER_CALL),
            (m("monologue_max"), f"{m('monologue_max')} IS NOT NULL"),
            *((f"{m(x)} / {m('tone_n')}", toned) for x in ("tone_low_sum", "tone_neutral_sum", "tone_high_sum")),
            (f"CAST({m('cues')} AS {real}) / {n}", None),
            *((m(x), None) for x in ("cues_overtalk", "cues_monologue", "cues_pace", "cues_energy"))]


def figures_sql(m, real: str, dialect: str, *, rounded: bool = True) -> str:
    """SELECT list of FIGURES[2:] from the measure sums ``m(name)`` (SQL of each measure: a
    column or its SUM/MAX), with two ``?`` parameters (the pace target): the SQL twin of
    :meth:`Queries._finish`, same operations in the same order (``real``: the dialect's double),
    each figure rounded to its :data:`PRECISION` unless not ``rounded``."""
    cols = []
    for (expr, cond), name in zip(_figure_terms(m, real), FIGURES[2:], strict=True):
        e = round_sql(expr, PRECISION[name] if rounded else None, dialect)
        cols.append(f"CASE WHEN {cond} THEN {e} END" if cond else e)
    return ", ".join(f"{c} AS {name}" for c, name in zip(cols, FIGURES[2:], strict=True))


def csv_line_sql(key: str, period: str, m) -> tuple[str, int]:
    """SQLite expression of one aggregate CSV line (no line end) and its number of ``?``
    parameters (each the pace target): ``key``, ``period`` and the figures from the measure sums
    ``m(name)``, rounded to :data:`PRECISION` and written with :data:`FIGURE_FORMATS` (printf) —
    the text Python writes for the same tuple. NULL when calls is 0 or NULL (an empty group).
    Rows where a figure is NULL take a second printf that leaves those fields empty; the others
    one printf (SQLite's printf writes NULL as 0)."""
    terms = _figure_terms(m, "REAL")
    names = FIGURES[2:]
    vals = [round_sql(e, PRECISION[nm], "sqlite") for (e, _), nm in zip(terms, names, strict=True)]
    conds = list(dict.fromkeys(c for _, c in terms if c))
    fast = ", ".join(vals)
    slow = ", ".join(v if c is None else f"CASE WHEN {c} THEN printf('{f}', {v}) END"
                     for v, (_, c), f in zip(vals, terms, FIGURE_FORMATS[2:], strict=True))
    slow_fmt = ",".join(f if c is None else "%s" for (_, c), f in zip(terms, FIGURE_FORMATS[2:], strict=True))
    sql = (f"CASE WHEN {m('calls')} > 0 THEN CASE WHEN {' AND '.join(conds)} "
           f"THEN printf('{','.join(FIGURE_FORMATS)}', {key}, {period}, {fast}) "
           f"ELSE printf('%s,%s,{slow_fmt}', {key}, {period}, {slow}) END END")
    return sql, fast.count("?") + slow.count("?")


def parse_ts(value: str | None, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` or ISO 8601 → aware UTC datetime. A bare date as an end bound means the
    whole day is included (the bound becomes the next midnight)."""
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            ts = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return ts + timedelta(days=1) if end else ts
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"bad date {value!r}: use YYYY-MM-DD or ISO 8601") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def period_key(day: str, period: str) -> str:
    """'2026-11-23' → day '2026-11-23', week '2026-W48' (ISO), month '2026-11'."""
    if period == "day":
        return day
    if period == "month":
        return day[:7]
    y, w, _ = date.fromisoformat(day).isocalendar()
    return f"{y}-W{w:02d}"


@dataclass(frozen=True)
class CallQuery:
    agent_id: str | None = None
    team_id: str | None = None
    device_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


class Queries:
    """Read and registry operations for the API (one per store; thread-safe via the store)."""

    def __init__(self, store: Store, pace_target_syl_s: float | None = None) -> None:
        if pace_target_syl_s is None:
            from pacelight.pace.targets import language_target_syl_s

            pace_target_syl_s = language_target_syl_s("en")      # the dashboard's default target
        self.store = store
        self.pace_target_syl_s = float(pace_target_syl_s)
        self.pace_fast_syl_s = self.pace_target_syl_s * FAST_FACTOR
        ensure_schema(store)
        ensure_rollup(store, self.pace_fast_syl_s)
        self._warned_threshold = False

    # -- helpers ---------------------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence = ()) -> list[dict]:
        return self.store._rows(sql, params)

    @staticmethod
    def _where(q: CallQuery, alias: str = "c") -> tuple[list[str], list]:
        where, params = [], []
        if q.agent_id:
            where.append(f"{alias}.agent_id = ?")
            params.append(q.agent_id)
        if q.team_id:
            where.append(f"{alias}.agent_id IN (SELECT agent_id FROM agents WHERE team_id = ?)")
            params.append(q.team_id)
        if q.device_id:
            where.append(f"{alias}.device_id = ?")
            params.append(q.device_id)
        if q.since:
            where.append(f"{alias}.started_at >= ?")
            params.append(iso(q.since))
        if q.until:
            where.append(f"{alias}.started_at < ?")
            params.append(iso(q.until))
        return where, params

    # -- calls -----------------------------------------------------------------------------
    _CALL_COLS = ("c.call_id, c.device_id, c.agent_id, ag.name AS agent_name, ag.team_id, c.started_at, "
                  "c.duration_s, c.agent_talk_s, c.customer_talk_s, c.silence_s, c.overlap_s, c.agent_ratio, "
                  "c.overtalk_events, c.agent_interruptions, c.customer_interruptions, f.agent_backchannels, "
                  "f.customer_backchannels, c.agent_pace_syl_s, c.customer_pace_syl_s, "
                  "c.agent_longest_monologue_s, f.customer_longest_monologue_s, f.agent_tone_low, "
                  "f.agent_tone_neutral, c.agent_tone_high, c.agent_tone_mean, f.customer_tone_low, "
                  "f.customer_tone_neutral, c.customer_tone_high, c.customer_tone_mean, c.cue_count, "
                  "f.cues_overtalk, f.cues_monologue, f.cues_pace, f.cues_energy")

    def list_calls(self, q: CallQuery) -> tuple[int, list[dict]]:
        """(total matching, one page newest first) — flat rows without the summary JSON."""
        where, params = self._where(q)
        w = (" WHERE " + " AND ".join(where)) if where else ""
        total = int(self.store._execute(f"SELECT COUNT(*) FROM calls c{w}", params).fetchone()[0])
        limit = max(1, min(MAX_PAGE, int(q.limit)))
        rows = self._rows(
            f"SELECT {self._CALL_COLS} FROM calls c LEFT JOIN call_facts f ON f.call_id = c.call_id "
            f"LEFT JOIN agents ag ON ag.agent_id = c.agent_id{w} "
            "ORDER BY c.started_at DESC, c.call_id DESC LIMIT ? OFFSET ?", [*params, limit, max(0, int(q.offset))])
        return total, rows

    def get_call(self, call_id: str) -> dict | None:
        rows = self._rows(f"SELECT {self._CALL_COLS}, c.received_at, c.summary FROM calls c "
                          "LEFT JOIN call_facts f ON f.call_id = c.call_id "
                          "LEFT JOIN agents ag ON ag.agent_id = c.agent_id WHERE c.call_id = ?", (call_id,))
        if not rows:
            return None
        rows[0]["summary"] = json.loads(rows[0]["summary"])
        return rows[0]

    # -- aggregates ------------------------------------------------------------------------
    _SUMS = measures_sql("?")             # row level; the one parameter is the fast-pace threshold
    _ROLLUP_SUMS = ", ".join(f"MAX(r.{n}) AS {n}" if n == "monologue_max" else f"SUM(r.{n}) AS {n}"
                             for n, _, _ in ROLLUP_MEASURES)

    def aggregate(self, by: str, period: str | None, q: CallQuery, *, from_rows: bool = False,
                  rounded: bool = True) -> list[dict]:
        """Aggregates grouped by ``by`` ('agent', 'team' or 'all') and ``period`` ('day', 'week',
        'month' or None = the whole range), as dicts keyed by :data:`FIGURES`, each figure rounded
        to its :data:`PRECISION` (``rounded=False``: full double precision, for checks). Rows are
        sorted by key then period. ``from_rows`` reads every call row instead of the rollup (same
        result; slow on large ranges)."""
        rows = self.aggregate_rows(by, period, q, from_rows=from_rows, rounded=rounded)
        return [dict(zip(FIGURES, r)) for r in rows]  # noqa: B905 (tuples of len(FIGURES); strict costs 15 %)

    def aggregate_rows(self, by: str, period: str | None, q: CallQuery, *, from_rows: bool = False,
                       rounded: bool = True) -> list[tuple]:
        """:meth:`aggregate` as tuples in :data:`FIGURES` order (CSV export without a dict per row)."""
        plan = self._plan(by, period, q, from_rows)
        raw: list[tuple] = []
        if plan is None:
            raw += self._raw_rows(by, period, q)
        else:
            parts, edges = plan
            if len(parts) == 1 and not edges and period in (None, _UNIT[parts[0][0]]):
                return self._finished_rollup(by, period, q, *parts[0], rounded=rounded)
            for table, lo, hi in parts:
                raw += self._raw_rollup(by, period, q, lo, hi, table)
            for s, u in edges:
                raw += self._raw_rows(by, period, dataclasses.replace(q, since=s, until=u))
        # fold (key, day|month) sums into (key, period): tuples (k, d, *measures in ROLLUP_MEASURES order)
        folded: dict[tuple, list] = {}
        pkeys: dict[str, str | None] = {}
        imax = _MEASURE_NAMES.index("monologue_max")
        for r in raw:
            d = r[1]
            pk = pkeys.get(d)
            if pk is None and period:
                pk = pkeys[d] = period_key(d, period)
            acc = folded.get((r[0], pk))
            if acc is None:
                folded[(r[0], pk)] = [0 if v is None else v for v in r[2:]]
                folded[(r[0], pk)][imax] = r[2 + imax]
                continue
            for i, v in enumerate(r[2:]):
                if v is None:
                    continue
                if i == imax:
                    acc[i] = v if acc[i] is None or v > acc[i] else acc[i]
                else:
                    acc[i] += v
        out = [self._finish(k, pk, acc, rounded) for (k, pk), acc in folded.items() if acc[0]]
        out.sort(key=lambda r: (r[0] is None, r[0] or "", r[1] or ""))
        return out

    def aggregate_csv_lines(self, by: str, period: str | None, q: CallQuery) -> list[str] | None:
        """:meth:`aggregate_rows` as CSV lines (no line ends) written by SQLite when one rollup
        table answers the range at ``period`` — the same text as formatting the tuples with
        :data:`FIGURE_FORMATS` (tested) without a Python object per figure; None otherwise
        (PostgreSQL, folded or row-level ranges, or a key the csv module would quote)."""
        if self.store.dialect.name != "sqlite":
            return None
        plan = self._plan(by, period, q, False)
        if plan is None or len(plan[0]) != 1 or plan[1] or period not in (None, _UNIT[plan[0][0][0]]):
            return None
        rows = self._finished_rollup(by, period, q, *plan[0][0], text=True)
        if any(k is not None and (set(k) & _CSV_SPECIAL) for k in {r[0] for r in rows}):
            return None
        return [r[2] for r in rows]

    def _plan(self, by: str, period: str | None, q: CallQuery, from_rows: bool
              ) -> tuple[list[tuple[str, str | None, str | None]], list[tuple[datetime, datetime]]] | None:
        """Where an aggregate comes from: None = the call rows, else the rollup parts (table,
        first, last) and the partial-day edges read from the rows."""
        if by not in ("agent", "team", "all"):
            raise InputError(f"bad grouping {by!r}: use agent, team or all")
        if period is not None and period not in PERIODS:
            raise InputError(f"bad period {period!r}: use day, week or month")
        if from_rows or q.device_id or not self._rollup_usable():
            return None                       # the rollups are per agent: one device's calls come from the rows
        first, last, edges = _split_days(q.since, q.until)
        parts: list[tuple[str, str | None, str | None]] = []
        if first is not None or last is not None or (q.since is None and q.until is None):
            # weeks cross months: day rows; otherwise whole months come from the month rollup
            fleet = by == "all" and not (q.agent_id or q.team_id)
            parts = ([("call_rollup_fleet" if fleet else "call_rollup", first, last)] if period in ("day", "week")
                     else _split_months(first, last))
        return parts, edges

    def _rollup_usable(self) -> bool:
        """The rollup counts "fast" calls for one threshold: the last Queries built on this store
        with another pace target owns it, and this one falls back to the rows (correct, slower)."""
        state = rollup_state(self.store)
        ok = state is not None and state[1] == self.pace_fast_syl_s
        if not ok and not self._warned_threshold:
            self._warned_threshold = True
            log.warning("dashboard rollup is for another pace target (%s); aggregating call rows", state)
        return ok

    def _raw_rows(self, by: str, period: str | None, q: CallQuery) -> list[tuple]:
        """Per (key, day) sums read from the call rows."""
        where, params = self._where(q)
        key = {"agent": "c.agent_id", "team": "ag.team_id", "all": "''"}[by]
        day = "substr(c.started_at, 1, 10)" if period else "''"
        sql = (f"SELECT {key} AS k, {day} AS d, {self._SUMS} FROM calls c "
               "LEFT JOIN call_facts f ON f.call_id = c.call_id "
               + ("LEFT JOIN agents ag ON ag.agent_id = c.agent_id " if by == "team" else "")
               + (" WHERE " + " AND ".join(where) if where else "")
               + _group_by(key, day))
        return self.store._execute(sql, [self.pace_fast_syl_s, *params]).fetchall()

    @staticmethod
    def _rollup_where(q: CallQuery, col: str, first: str | None, last: str | None) -> tuple[list[str], list]:
        """WHERE terms over rollup rows ``r`` (agent/team filters; ``first`` ≤ ``col`` < ``last``)."""
        where, params = [], []
        if q.agent_id:
            where.append("r.agent_id = ?")
            params.append(q.agent_id)
        if q.team_id:
            where.append("r.agent_id IN (SELECT agent_id FROM agents WHERE team_id = ?)")
            params.append(q.team_id)
        if first is not None:
            where.append(f"r.{col} >= ?")
            params.append(first)
        if last is not None:
            where.append(f"r.{col} < ?")
            params.append(last)
        return where, params

    def _raw_rollup(self, by: str, period: str | None, q: CallQuery, first: str | None,
                    last: str | None, table: str = "call_rollup") -> list[tuple]:
        """Per (key, day or month) sums of the rollup ``table`` over ``first`` ≤ day (or month) < ``last``."""
        col = _UNIT[table]
        where, params = self._rollup_where(q, col, first, last)
        key = _ROLLUP_KEY[by]
        day = f"r.{col}" if period else "''"
        group = "r.agent_id" if by == "agent" else key      # same groups; follows the (agent_id, …) index
        sql = (f"SELECT {key} AS k, {day} AS d, {self._ROLLUP_SUMS} " + _rollup_from(table, by, where)
               + _group_by(group, day))
        return self.store._execute(sql, params).fetchall()

    def _finished_rollup(self, by: str, period: str | None, q: CallQuery, table: str, first: str | None,
                         last: str | None, *, rounded: bool = True, text: bool = False) -> list[tuple]:
        """Final figures of a range one rollup ``table`` answers at ``period`` (its unit or None),
        grouped and finished in SQL; rows sorted by key then period. Per agent at the table's unit
        (and the fleet table per day) each rollup row already is one result row: no grouping.
        ``text`` (SQLite): rows (key, period, CSV line) instead (:func:`csv_line_sql`)."""
        col = _UNIT[table]
        where, params = self._rollup_where(q, col, first, last)
        key = _ROLLUP_KEY[by]
        day = f"r.{col}" if period else "NULL"
        single = period is not None and (by == "agent" or table == "call_rollup_fleet")
        d = self.store.dialect
        if single:         # rows in primary-key order (period, agent): the key sort below keeps it
            m = (lambda n: f"r.{n}")  # noqa: E731
            grouping = f" ORDER BY r.{col}"
        else:
            m = (lambda n: f"MAX(r.{n})" if n == "monologue_max" else f"SUM(r.{n})")  # noqa: E731
            grouping = _group_by("r.agent_id" if by == "agent" else key, day if period else "''")
        if text:
            figures, n_target = csv_line_sql(key, day, m)
        else:
            figures, n_target = figures_sql(m, d.real, d.name, rounded=rounded), 2
        sql = f"SELECT {key} AS k, {day} AS d, {figures} " + _rollup_from(table, by, where) + grouping
        rows = self.store._execute(sql, [self.pace_target_syl_s] * n_target + params).fetchall()
        if not single:     # one aggregate row over nothing: calls NULL
            rows = [r for r in rows if r[2]]
        # sorted like the fold: by key (None last), then period (stable sorts; ``single`` rows
        # already come in period order)
        none_key = [r for r in rows if r[0] is None]
        if none_key:
            rows = [r for r in rows if r[0] is not None]
        if period and not single:
            rows.sort(key=itemgetter(1))
            none_key.sort(key=itemgetter(1))
        rows.sort(key=itemgetter(0))
        return rows + none_key

    def _finish(self, key: str | None, period: str | None, acc: list, rounded: bool = True) -> tuple:
        """Figures of one (key, period) in :data:`FIGURES` order from its measure sums (``acc`` in
        ROLLUP_MEASURES order, calls > 0), rounded to :data:`PRECISION` (:func:`round_figure`)
        unless not ``rounded``; :func:`figures_sql` is its SQL twin."""
        (n, duration_s, agent_talk_s, customer_talk_s, overlap_s, overtalk_events, agent_interruptions,
         customer_interruptions, agent_backchannels, customer_backchannels, pace_sum, pace_n, pace_fast_calls,
         monologue_sum, monologue_max, tone_low_sum, tone_neutral_sum, tone_high_sum, tone_n, cues,
         cues_overtalk, cues_monologue, cues_pace, cues_energy) = acc
        talk = agent_talk_s + customer_talk_s
        pace = pace_sum / pace_n if pace_n else None
        target = self.pace_target_syl_s
        row = (key, period, n, duration_s / 3600.0, agent_talk_s / talk if talk > 0 else None, pace, target,
               pace / target if pace is not None else None, pace_fast_calls / pace_n if pace_n else None,
               overtalk_events / n, overlap_s / n, agent_interruptions / n, customer_interruptions / n,
               agent_backchannels / n, customer_backchannels / n, monologue_sum / n, monologue_max,
               tone_low_sum / tone_n if tone_n else None, tone_neutral_sum / tone_n if tone_n else None,
               tone_high_sum / tone_n if tone_n else None, cues / n, cues_overtalk, cues_monologue, cues_pace,
               cues_energy)
        if not rounded:
            return row
        return tuple(v if s is None or v is None else int(v * s + 0.5) / s  # round_figure, inlined
                     for v, s in zip(row, _SCALES))  # noqa: B905 (both of len(FIGURES))

    def distribution(self, column: str, q: CallQuery, edges: Sequence[float]) -> list[int]:
        """Histogram of one per-call metric (counts per [edges[i], edges[i+1]))."""
        allowed = {"agent_ratio", "agent_pace_syl_s", "overtalk_events", "agent_tone_high",
                   "agent_longest_monologue_s"}
        if column not in allowed:
            raise InputError(f"no distribution for {column!r}")
        where, params = self._where(q)
        where.append(f"c.{column} IS NOT NULL")
        cases = " ".join(f"WHEN c.{column} < ? THEN {i}" for i in range(1, len(edges)))
        sql = (f"SELECT CASE WHEN c.{column} < ? THEN -1 {cases} ELSE {len(edges)} END AS b, COUNT(*) AS n "
               f"FROM calls c WHERE {' AND '.join(where)} GROUP BY 1")
        counts = [0] * (len(edges) - 1)
        for r in self._rows(sql, [edges[0], *edges[1:], *params]):
            b = int(r["b"]) - 1
            if 0 <= b < len(counts):
                counts[b] += int(r["n"])
        return counts

    # -- devices ---------------------------------------------------------------------------
    def devices(self, offline_after_s: float = 600.0) -> list[dict]:
        rows = self._rows(
            "SELECT d.device_id, d.state, d.version AS firmware, d.first_seen, d.last_seen, d.clock_skew_s, "
            "d.calls_received, m.tone_model, m.pipeline, m.last_call_at, "
            "(SELECT a.agent_id FROM assignments a WHERE a.device_id = d.device_id AND a.valid_to IS NULL "
            "ORDER BY a.valid_from DESC LIMIT 1) AS agent_id "
            "FROM devices d LEFT JOIN device_models m ON m.device_id = d.device_id ORDER BY d.device_id")
        now = utcnow()
        for r in rows:
            age = (now - datetime.fromisoformat(r["last_seen"].replace("Z", "+00:00"))).total_seconds()
            r["last_seen_age_s"] = round(age, 1)
            r["online"] = r["state"] == "online" or (r["state"] == "unknown" and age <= offline_after_s)
        return rows

    # -- registry --------------------------------------------------------------------------
    def teams(self) -> list[dict]:
        return self._rows("SELECT t.team_id, t.name, (SELECT COUNT(*) FROM agents a WHERE a.team_id = t.team_id) "
                          "AS agents FROM teams t ORDER BY t.name")

    def agents(self, team_id: str | None = None) -> list[dict]:
        sql = ("SELECT a.agent_id, a.name, a.team_id, t.name AS team_name, "
               "(SELECT s.device_id FROM assignments s WHERE s.agent_id = a.agent_id AND s.valid_to IS NULL "
               "ORDER BY s.valid_from DESC LIMIT 1) AS device_id FROM agents a "
               "LEFT JOIN teams t ON t.team_id = a.team_id")
        params: list = []
        if team_id:
            sql += " WHERE a.team_id = ?"
            params.append(team_id)
        return self._rows(sql + " ORDER BY a.name", params)

    def agent(self, agent_id: str) -> dict | None:
        rows = [a for a in self._rows("SELECT a.agent_id, a.name, a.team_id, t.name AS team_name FROM agents a "
                                      "LEFT JOIN teams t ON t.team_id = a.team_id WHERE a.agent_id = ?",
                                      (agent_id,))]
        return rows[0] if rows else None

    def team(self, team_id: str) -> dict | None:
        rows = self._rows("SELECT team_id, name FROM teams WHERE team_id = ?", (team_id,))
        return rows[0] if rows else None

    def upsert_team(self, team_id: str, name: str) -> None:
        _check_id(team_id, "team id")
        with self.store.transaction() as conn:
            conn.execute(self.store.dialect.sql("INSERT INTO teams (team_id, name) VALUES (?, ?) ON CONFLICT "
                                                "(team_id) DO UPDATE SET name = excluded.name"), (team_id, name))

    def upsert_agent(self, agent_id: str, name: str, team_id: str | None) -> None:
        _check_id(agent_id, "agent id")
        if team_id and self.team(team_id) is None:
            raise InputError(f"no team {team_id!r}")
        with self.store.transaction() as conn:
            conn.execute(self.store.dialect.sql(
                "INSERT INTO agents (agent_id, name, team_id) VALUES (?, ?, ?) ON CONFLICT (agent_id) DO UPDATE "
                "SET name = excluded.name, team_id = excluded.team_id"), (agent_id, name, team_id or None))

    def assignments(self, device_id: str | None = None, agent_id: str | None = None) -> list[dict]:
        sql = "SELECT id, device_id, agent_id, valid_from, valid_to FROM assignments"
        where, params = [], []
        if device_id:
            where.append("device_id = ?")
            params.append(device_id)
        if agent_id:
            where.append("agent_id = ?")
            params.append(agent_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._rows(sql + " ORDER BY device_id, valid_from DESC", params)

    def assign(self, device_id: str, agent_id: str | None, valid_from: datetime | None = None) -> None:
        """From ``valid_from`` (default now) on, ``agent_id`` sits at ``device_id`` (None: nobody).

        Closes the device's assignment running at that time and the agent's open assignment at
        another desk, splits nothing else (an assignment starting later than ``valid_from`` bounds
        the new one), and re-attributes the affected calls in the same transaction."""
        _check_id(device_id, "device id")
        if agent_id is not None and self.agent(agent_id) is None:
            raise InputError(f"no agent {agent_id!r}; add the agent first")
        start = iso(valid_from or utcnow())
        d = self.store.dialect
        with self.store.transaction() as conn:
            lock_rollup(conn, self.store)
            nxt = conn.execute(d.sql("SELECT MIN(valid_from) FROM assignments WHERE device_id = ? AND valid_from > ?"),
                               (device_id, start)).fetchone()[0]
            touched: list[tuple[str, str, str | None]] = [(device_id, start, nxt)]
            if agent_id is not None:
                for (dev,) in conn.execute(d.sql(
                        "SELECT device_id FROM assignments WHERE agent_id = ? AND device_id <> ? "
                        "AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"),
                        (agent_id, device_id, start, start)).fetchall():
                    touched.append((dev, start, None))
                conn.execute(d.sql("UPDATE assignments SET valid_to = ? WHERE agent_id = ? AND device_id <> ? "
                                   "AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"),
                             (start, agent_id, device_id, start, start))
            conn.execute(d.sql("UPDATE assignments SET valid_to = ? WHERE device_id = ? AND valid_from < ? "
                               "AND (valid_to IS NULL OR valid_to > ?)"), (start, device_id, start, start))
            conn.execute(d.sql("DELETE FROM assignments WHERE device_id = ? AND valid_from = ?"), (device_id, start))
            if agent_id is not None:
                conn.execute(d.sql("INSERT INTO assignments (device_id, agent_id, valid_from, valid_to) "
                                   "VALUES (?, ?, ?, ?)"), (device_id, agent_id, start, nxt))
            for dev, since, until in touched:
                reattribute(conn, self.store, dev, since, until)
        log.info("device %s assigned to %s from %s", device_id, agent_id, start)


def _check_id(value: str, what: str) -> None:
    import re

    from pacelight.summary import ID_PATTERN

    if not isinstance(value, str) or not re.match(ID_PATTERN, value):
        raise InputError(f"bad {what} {value!r}: letters, digits and . _ : - (max 128)")


def _group_by(*exprs: str) -> str:
    """GROUP BY of the non-constant expressions (PostgreSQL refuses ``GROUP BY ''``); none: one
    row over everything (``calls`` 0 when nothing matched, dropped by the fold)."""
    cols = [x for x in exprs if x != "''"]
    return f" GROUP BY {', '.join(cols)}" if cols else ""


def _split_months(first: str | None, last: str | None) -> list[tuple[str, str | None, str | None]]:
    """Whole days ``first`` ≤ day < ``last`` (None = unbounded) as (table, lo, hi) parts: the whole
    months from ``call_rollup_month`` (lo/hi 'YYYY-MM'), the days around them from ``call_rollup``."""
    m_lo = None
    if first is not None:
        d = date.fromisoformat(first)
        m_lo = first[:7] if d.day == 1 else (d.replace(day=28) + timedelta(days=4)).strftime("%Y-%m")
    m_hi = last[:7] if last is not None else None
    if m_lo is not None and m_hi is not None and m_lo >= m_hi:
        return [("call_rollup", first, last)]
    parts: list[tuple[str, str | None, str | None]] = [("call_rollup_month", m_lo, m_hi)]
    if first is not None and first != f"{m_lo}-01":
        parts.append(("call_rollup", first, f"{m_lo}-01"))
    if last is not None and last != f"{m_hi}-01":
        parts.append(("call_rollup", f"{m_hi}-01", last))
    return parts


def _midnight(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _split_days(since: datetime | None, until: datetime | None
                ) -> tuple[str | None, str | None, list[tuple[datetime, datetime]]]:
    """Split [since, until) into whole UTC days ``first`` ≤ day < ``last`` (None = unbounded; both
    None with bounds given = no whole day) and the partial-day edges to read row by row."""
    lo = hi = None
    edges: list[tuple[datetime, datetime]] = []
    if since is not None:
        lo = _midnight(since)
        if lo != since:
            lo += timedelta(days=1)
    if until is not None:
        hi = _midnight(until)
    if lo is not None and hi is not None and lo >= hi:          # no whole day inside the range
        if since is not None and until is not None and since < until:
            edges.append((since, until))
        return None, None, edges
    if since is not None and lo != since:
        edges.append((since, lo))
    if until is not None and hi != until:
        edges.append((hi, until))
    return (lo.date().isoformat() if lo is not None else None,
            hi.date().isoformat() if hi is not None else None, edges)


@dataclass(frozen=True)
class Range:
    """A resolved date range for pages (default: the last ``days`` days up to now)."""

    since: datetime
    until: datetime
    extra: dict = field(default_factory=dict)

    @classmethod
    def resolve(cls, since: str | None, until: str | None, days: int = 30) -> Range:
        u = parse_ts(until, end=True) or (utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
                                          + timedelta(days=1))
        s = parse_ts(since) or (u - timedelta(days=days))
        if s >= u:
            raise InputError("the range is empty: 'since' must be before 'until'")
        return cls(s, u)
