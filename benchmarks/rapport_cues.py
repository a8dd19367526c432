"""Rapport cues on simulated calls through the production pipeline (issue 13).

    .venv/bin/python -m benchmarks.rapport_cues [--seeds N] [--duration S] [--no-record]

Pace: slow / normal / fast customers (espeak-ng, English) with adapting or non-adapting agents;
the pace cue should fire for ≥ 90 % of non-adapting and ≤ 5 % of adapting agents, never in the
first 15 s. The same audio is also analysed with the fixed-norm rule for comparison.
Energy: tone-labelled clips (manifest arousal high/low) as turns, analysed with the shipped
tone model; the "calm" cue should fire for ≥ 90 % of high/high calls and ≤ 5 % of the others.
Every call: cue rate ≤ 2 per minute (onsets / call minutes, and in any rolling 60 s).
Records into docs/benchmarks.md (section ``rapport_cues``). Exit 0 when all targets are met.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

from benchmarks.report import write_section

log = logging.getLogger(__name__)

PACE_HIT_MIN = 0.90
PACE_FALSE_MAX = 0.05
ENERGY_HIT_MIN = 0.90
ENERGY_FALSE_MAX = 0.05
RATE_MAX_PER_MIN = 2.0
QUIET_START_S = 15.0


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.rapport_cues")
    ap.add_argument("--seeds", type=int, default=10, help="calls per scenario")
    ap.add_argument("--duration", type=float, default=75.0, help="call length, s")
    ap.add_argument("--no-record", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from pacelight.cues.rapport_eval import energy_scenarios, pace_scenarios, run_call

    t0 = time.monotonic()
    rows: list[tuple[str, str, list[dict]]] = []
    for sc in pace_scenarios(args.duration) + energy_scenarios(args.duration):
        res = [run_call(sc.spec, 1000 + i, compare_fixed=sc.name.startswith("pace/")) for i in range(args.seeds)]
        rows.append((sc.name, sc.expect, res))
        print(f"{sc.name}: done ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    elapsed = time.monotonic() - t0

    ok = True
    lines = [
        f"{args.seeds} simulated calls of {args.duration:.0f} s per scenario (seeds 1000…), production pipeline "
        "(`build_analyzer`: echo-gated activity, pace estimator, tone model, cue engine with rapport rules). "
        f"Tone model: `{rows[-1][2][0]['tone_model']}`. Wall time {elapsed:.0f} s.",
        "",
        "| scenario | expected | pace cue | calm cue | fixed-norm pace cue | median pace ratio a/c "
        "| mismatch share | max cues/min | first cue ≥ 15 s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    agg = {"pace": [0, 0], "none-pace": [0, 0], "energy": [0, 0], "none-energy": [0, 0]}
    max_rate, max_win, early = 0.0, 0, 0
    for name, expect, res in rows:
        n = len(res)
        pace_hits = sum(1 for r in res if r["pace_onsets"])
        calm_hits = sum(1 for r in res if any(d == "calm" for _, d in r["energy_onsets"]))
        fixed = sum(1 for r in res if r.get("fixed_pace_onsets")) if "fixed_pace_onsets" in res[0] else None
        hits = pace_hits if expect.endswith("pace") else calm_hits
        agg[expect][0] += hits
        agg[expect][1] += n
        ratios = [r["rapport"]["pace_ratio_median"] for r in res if r["rapport"] and r["rapport"]["pace_ratio_median"]]
        mism = [r["rapport"]["pace_mismatch_share"] for r in res
                if r["rapport"] and r["rapport"]["pace_mismatch_share"] is not None]
        rate = max(r["rate_per_min"] for r in res)
        win = max(r["max_onsets_60s"] for r in res)
        firsts = [r["first_onset_s"] for r in res if r["first_onset_s"] is not None]
        early += sum(1 for f in firsts if f < QUIET_START_S)
        max_rate, max_win = max(max_rate, rate), max(max_win, win)
        lines.append(
            f"| {name} | {'cue' if expect in ('pace', 'energy') else 'no cue'} | {pace_hits}/{n} | {calm_hits}/{n} "
            f"| {'–' if fixed is None else f'{fixed}/{n}'} "
            f"| {statistics.median(ratios):.2f} | {statistics.mean(mism) if mism else 0:.2f} | {rate:.2f} "
            f"| {'yes' if all(f >= QUIET_START_S for f in firsts) else 'NO'} |"
            if ratios else
            f"| {name} | {expect} | {pace_hits}/{n} | {calm_hits}/{n} | – | – | – | {rate:.2f} | – |"
        )
    checks = [
        ("pace cue, non-adapting agents", agg["pace"], PACE_HIT_MIN, True),
        ("pace cue, adapting agents", agg["none-pace"], PACE_FALSE_MAX, False),
        ("calm cue, high/high arousal calls", agg["energy"], ENERGY_HIT_MIN, True),
        ("calm cue, other energy calls", agg["none-energy"], ENERGY_FALSE_MAX, False),
    ]
    lines += ["", "| check | measured | target | met |", "|---|---|---|---|"]
    for label, (h, n), target, at_least in checks:
        frac = h / n if n else 0.0
        met = frac >= target if at_least else frac <= target
        ok &= met
        lines.append(f"| {label} | {h}/{n} = {_pct(frac)} | {'≥' if at_least else '≤'} {_pct(target)} "
                     f"| {'yes' if met else 'NO'} |")
    rate_ok = max_rate <= RATE_MAX_PER_MIN + 1e-9 and max_win <= 2
    ok &= rate_ok and early == 0
    lines.append(f"| cue rate, every call | max {max_rate:.2f}/min; max {max_win} onsets in any 60 s | ≤ 2 "
                 f"| {'yes' if rate_ok else 'NO'} |")
    lines.append(f"| cue onsets in the first 15 s | {early} | 0 | {'yes' if early == 0 else 'NO'} |")
    lines += [
        "",
        "Pace ratio = agent/customer rolling pace (median over call time); mismatch share = share of the "
        "time the agent's pace was known that it was ≥ 1.25 × the customer-relative target. The fixed-norm "
        "column analyses the same audio with the rapport rules off (1.20 × the language norm for 5 s). "
        "Energy is acoustic arousal as the tone model scores it, not emotion.",
    ]
    md = "\n".join(lines)
    print(md)
    if not args.no_record:
        write_section("rapport_cues", "Rapport cues (customer-relative pace, energy)", md)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
