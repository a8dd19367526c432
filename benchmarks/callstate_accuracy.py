"""Call-state accuracy: hold music, IVR prompts, tones and agent mute are not conversation.

≥ 20 simulated calls with call-state content (`pacelight simulate --call-state`: ringback, IVR
prompt, DTMF, music on hold incl. sung and spoken passages, agent talk over hold music, agent mute,
busy tone) and the same seeds without it are analysed by the streaming pipeline. Targets (issue 12):

* music/tone frames of the receive path reported as customer speech ≤ 3 %;
* hold time within ±1 s per hold;
* talk-ratio error (mean |pipeline − truth|) with call-state content within 0.5 pp of the same
  calls without it: the twin (`CallSpec(call_state_sounds=False)`: same schedule, conversation,
  levels, noise and babble — call-state content draws from its own random stream — with none of
  the call-state sounds); the plain same-seed calls (no preamble, no forced hold: a different
  conversation) are reported too;
* real agent speech over hold music still detected (frame recall, reported);
* mute reported; agent DTMF frames not counted as agent talk (reported);
* normal calls unharmed: the foundation benchmark's calls (no call-state content) with the stage on
  versus off — talk-ratio error within 0.5 pp, per-channel F1 within 0.005;
* the stage costs ≤ 10 % of the pipeline's CPU (same calls, stage on vs off).

Simulated calls are cached under ``out/bench-callstate/`` (``--calls-dir``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.report import table, write_section

ROOT = Path(__file__).resolve().parents[1]
FR = 0.01
FOUNDATION_DIR = ROOT / "out" / "bench-calls" / "s2026-n30-m1.6"


def _mask(intervals, n: int, label: str | None = None) -> np.ndarray:
    m = np.zeros(n, bool)
    for iv in intervals:
        if label is not None and iv[2] != label:
            continue
        m[int(round(iv[0] / FR)) : int(round(iv[1] / FR))] = True
    return m


def analyse(wav: str, call_state: bool) -> tuple[dict, float]:
    """Summary and CPU seconds of `analyze`'s pipeline as timed by benchmarks.pipeline_speed
    (pace and cues on, tone off: its "full pipeline without tone")."""
    from pacelight.analysis.callstate import CallStateSettings
    from pacelight.analysis.pipeline import PipelineSettings
    from pacelight.analysis.runner import analyze_file

    settings = PipelineSettings(call_state=CallStateSettings() if call_state else None)
    t0 = time.process_time()
    s = analyze_file(Path(wav), settings, with_segments=True, with_tone=False).to_dict()
    return s, time.process_time() - t0


VARIANTS = {"1": {"call_state": True}, "0": {"call_state": False},
            "t": {"call_state": True, "call_state_sounds": False}}  # with, plain same seed, twin


def _sim_one(a: tuple[str, int, int, float, str]) -> str:
    from pacelight.sim.call import CallSpec, call_seed, simulate_call, write_call

    out, seed, i, dur, v = a
    call = simulate_call(replace(CallSpec(duration_s=dur), **VARIANTS[v]), call_seed(seed, i), call_id=f"cs-{i}")
    wav = Path(out) / f"c{i:02d}-{v}.wav"
    write_call(call, wav)
    return str(wav)


def _run(pool, jobs: list[tuple[str, bool]]) -> list[tuple[dict, float]]:
    if pool is None:
        return [analyse(w, c) for w, c in jobs]
    return list(pool.map(analyse, *zip(*jobs, strict=True)))


def _truth(wav: str) -> dict:
    return json.loads(Path(wav).with_suffix("").with_suffix(".truth.json").read_text())


def foundation(pool, folder: Path) -> tuple[list, bool]:
    from benchmarks.analysis_accuracy import Result, aggregate, score

    wavs = sorted(str(w) for w in folder.glob("*.wav"))
    res = _run(pool, [(w, cs) for w in wavs for cs in (True, False)])
    agg = {}
    for k, cs in enumerate((True, False)):
        scores = []
        for j, w in enumerate(wavs):
            s = res[2 * j + k][0]
            scores.append(score(Result(s["segments"]["agent"], s["segments"]["customer"], s["overlaps"]), _truth(w)))
        agg[cs] = aggregate(scores)
    on, off = agg[True], agg[False]
    rows = [[f"{len(wavs)} foundation calls ({folder.name})", "stage on", "stage off", "difference"]]
    for key, label in (("ratio_mean_pp", "talk-ratio error mean (pp)"), ("ratio_max_pp", "talk-ratio error max (pp)"),
                       ("agent_f1", "agent F1"), ("customer_f1", "customer F1"),
                       ("agent_fa", "agent false alarm"), ("customer_fa", "customer false alarm"),
                       ("int_precision", "interruption precision"), ("int_recall", "interruption recall")):
        rows.append([label, f"{on[key]:.4f}", f"{off[key]:.4f}", f"{on[key] - off[key]:+.4f}"])
    ok = (abs(on["ratio_mean_pp"] - off["ratio_mean_pp"]) <= 0.5 and abs(on["agent_f1"] - off["agent_f1"]) <= 0.005
          and abs(on["customer_f1"] - off["customer_f1"]) <= 0.005)
    return rows, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1212)
    ap.add_argument("--duration-s", type=float, default=90.0)
    ap.add_argument("--calls-dir", type=Path, default=None)
    ap.add_argument("--foundation-dir", type=Path, default=FOUNDATION_DIR)
    ap.add_argument("--no-foundation", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    # v2: call-state content from its own random stream (earlier caches hold other calls).
    folder = args.calls_dir or ROOT / "out" / "bench-callstate" / f"s{args.seed}-n{args.calls}-d{args.duration_s:g}-v2"
    folder.mkdir(parents=True, exist_ok=True)
    pool = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None
    try:
        need = [(str(folder), args.seed, i, args.duration_s, v) for i in range(args.calls) for v in VARIANTS
                if not (folder / f"c{i:02d}-{v}.truth.json").exists()]
        if need:
            list(pool.map(_sim_one, need)) if pool else [_sim_one(a) for a in need]
        wav = {(i, v): str(folder / f"c{i:02d}-{v}.wav") for i in range(args.calls) for v in VARIANTS}
        # Stage on and off of the same call side by side (adjacent jobs run at the same time on the
        # two workers, so both see the same machine load).
        jobs = [(wav[i, "1"], cs) for i in range(args.calls) for cs in (True, False)]
        jobs += [(wav[i, v], True) for i in range(args.calls) for v in ("t", "0")]
        out = _run(pool, jobs)
        n_calls = args.calls
        on_cs, off_cs = out[0 : 2 * n_calls : 2], out[1 : 2 * n_calls : 2]
        on_twin, on_plain = out[2 * n_calls :: 2], out[2 * n_calls + 1 :: 2]
        found_rows, found_ok = (foundation(pool, args.foundation_dir) if not args.no_foundation
                                and args.foundation_dir.exists() else ([], True))
    finally:
        if pool is not None:
            pool.shutdown()
    agg = {k: 0 for k in ("mt_n", "mt_talk", "ivr_n", "ivr_talk", "over_n", "over_hit", "sp_n", "sp_hit",
                          "dtmf_n", "dtmf_talk", "asp_n", "asp_on", "asp_off", "mute_n", "mute_hit")}
    cpu_on = sum(c for _s, c in on_cs)
    cpu_off = sum(c for _s, c in off_cs)
    hold_err, tr_err_cs, tr_err_twin, tr_err_plain, ivr_err, mute_err, rows = [], [], [], [], [], [], []
    for i in range(n_calls):
        truth, truth_twin, truth_plain = _truth(wav[i, "1"]), _truth(wav[i, "t"]), _truth(wav[i, "0"])
        s, s_off, s_twin, s_plain = on_cs[i][0], off_cs[i][0], on_twin[i][0], on_plain[i][0]
        n = int(round(truth["duration_s"] / FR)) + 1
        cust = _mask(s["segments"]["customer"], n)
        agent = _mask(s["segments"]["agent"], n)
        agent_off = _mask(s_off["segments"]["agent"], n)
        cls = truth["classes"]["customer"]
        mt = _mask(cls, n, "music") | _mask(cls, n, "tone")
        ivr = _mask(cls, n, "ivr")
        agg["mt_n"] += int(mt.sum())
        agg["mt_talk"] += int((mt & cust).sum())
        agg["ivr_n"] += int(ivr.sum())
        agg["ivr_talk"] += int((ivr & cust).sum())
        sp = _mask(cls, n, "speech")
        agg["sp_n"] += int(sp.sum())
        agg["sp_hit"] += int((sp & cust).sum())
        asp = _mask(truth["segments"]["agent"], n)
        agg["asp_n"] += int(asp.sum())
        agg["asp_on"] += int((asp & agent).sum())
        agg["asp_off"] += int((asp & agent_off).sum())
        dt = _mask(truth["classes"]["agent"], n, "tone")
        agg["dtmf_n"] += int(dt.sum())
        agg["dtmf_talk"] += int((dt & agent).sum())
        over = np.zeros(n, bool)
        for a, b in truth["call_state_events"].get("talk_over_hold", []):
            over[int(round(a / FR)) : int(round(b / FR))] = True
        over &= asp
        agg["over_n"] += int(over.sum())
        agg["over_hit"] += int((over & agent).sum())
        cs_got = s.get("call_state") or {}
        t_cs = truth["call_state"]
        got_holds = cs_got.get("hold_s", 0.0)
        hold_err.append(abs(got_holds - t_cs["hold_s"]) / max(len(truth["holds"]), 1))
        ivr_err.append(cs_got.get("ivr_s", 0.0) - t_cs["ivr_s"])
        mute_err.append(cs_got.get("mute_s", 0.0) - t_cs["mute_s"])
        if t_cs["mute_s"] > 0:
            agg["mute_n"] += 1
            agg["mute_hit"] += int(cs_got.get("mute_s", 0.0) >= 0.5 * t_cs["mute_s"])
        for tt, ss, errs in ((truth, s, tr_err_cs), (truth_twin, s_twin, tr_err_twin),
                             (truth_plain, s_plain, tr_err_plain)):
            ta = tt["talk"]["agent_s"] / max(tt["talk"]["agent_s"] + tt["talk"]["customer_s"], 1e-9)
            ra = ss["talk"]["agent_ratio"]
            errs.append(abs((ra if ra is not None else 0.0) - ta) * 100)
        rows.append([i, len(truth["holds"]), f"{t_cs['hold_s']:.1f}", f"{got_holds:.1f}", f"{t_cs['ivr_s']:.1f}",
                     f"{cs_got.get('ivr_s', 0):.1f}", f"{t_cs['mute_s']:.1f}", f"{cs_got.get('mute_s', 0):.1f}",
                     f"{tr_err_cs[-1]:.1f}", f"{tr_err_twin[-1]:.1f}", f"{tr_err_plain[-1]:.1f}"])
    mt_share = agg["mt_talk"] / max(agg["mt_n"], 1)
    he = np.array(hold_err)
    hold_ok = float((he <= 1.0).mean())
    d_tr = float(np.mean(tr_err_cs) - np.mean(tr_err_twin))
    d_tr_plain = float(np.mean(tr_err_cs) - np.mean(tr_err_plain))
    over_recall = agg["over_hit"] / max(agg["over_n"], 1)
    cpu_share = (cpu_on - cpu_off) / max(cpu_off, 1e-9)
    dtmf_share = agg["dtmf_talk"] / max(agg["dtmf_n"], 1)
    ok = (mt_share <= 0.03 and hold_ok == 1.0 and abs(d_tr) <= 0.5 and cpu_share <= 0.10 and found_ok
          and agg["mute_hit"] == agg["mute_n"] and dtmf_share <= 0.03)
    summary = [
        ["music/tone frames counted as customer talk", f"{100 * mt_share:.1f} %", "≤ 3 %"],
        ["IVR frames counted as customer talk", f"{100 * agg['ivr_talk'] / max(agg['ivr_n'], 1):.1f} %", "—"],
        ["hold time within ±1 s per hold (per call, |error| / holds)",
         f"{100 * hold_ok:.0f} % (median {np.median(he):.2f} s, max {he.max():.2f} s)", "100 %"],
        ["talk-ratio error, call-state calls", f"{np.mean(tr_err_cs):.2f} pp", "—"],
        ["talk-ratio error, the same calls without call-state sounds (twins)", f"{np.mean(tr_err_twin):.2f} pp", "—"],
        ["difference (call-state − twin)", f"{d_tr:+.2f} pp", "within ±0.5 pp"],
        ["talk-ratio error, plain calls of the same seeds (other conversations)",
         f"{np.mean(tr_err_plain):.2f} pp (difference {d_tr_plain:+.2f} pp)", "—"],
        ["agent speech frame recall, call-state calls: stage on / off",
         f"{100 * agg['asp_on'] / max(agg['asp_n'], 1):.1f} % / {100 * agg['asp_off'] / max(agg['asp_n'], 1):.1f} %",
         "—"],
        ["agent speech over hold music: frame recall", f"{100 * over_recall:.1f} % ({agg['over_n']} frames)", "—"],
        ["agent DTMF frames counted as agent talk", f"{100 * dtmf_share:.1f} % ({agg['dtmf_n']} frames)", "≤ 3 %"],
        ["customer speech frame recall (call-state calls)", f"{100 * agg['sp_hit'] / max(agg['sp_n'], 1):.1f} %", "—"],
        ["IVR seconds error (mean, signed)", f"{np.mean(ivr_err):+.2f} s", "—"],
        ["mutes reported (≥ half their length)", f"{agg['mute_hit']} / {agg['mute_n']}", "all"],
        ["mute seconds error (mean |e|)", f"{np.mean(np.abs(mute_err)):.2f} s", "—"],
        ["CPU: pipeline with stage / without", f"{cpu_on:.1f} s / {cpu_off:.1f} s (+{100 * cpu_share:.1f} %)",
         "≤ 10 %"],
    ]
    body = (
        f"{n_calls} simulated calls × {args.duration_s:.0f} s (seed {args.seed}), each with call-state content "
        "(ringback, IVR, DTMF, hold music of every style, agent mute, busy tone), the same call without "
        "the call-state sounds (twin: same conversation, levels, noise and babble) and the plain call of the "
        "same seed (no preamble or forced hold: a different conversation), analysed by `analyze`'s pipeline (pace and cues on, tone off). CPU from "
        "`time.process_time` (file reading included) on the same call-state files with the stage on and off, "
        "each call's two runs side by side on the two worker processes (a shared machine: figures vary run to run).\n\n"
        + table(["measure", "value", "target"], summary)
        + ("\n\nNormal calls (no call-state content) with the stage on vs off — target: talk-ratio error "
           "within 0.5 pp, F1 within 0.005:\n\n" + table(found_rows[0], found_rows[1:]) if found_rows else "")
        + f"\n\nTargets: **{'met' if ok else 'NOT all met'}**.\n\nPer call (s; talk-ratio errors in pp):\n\n"
        + table(["call", "holds", "hold truth", "hold", "IVR truth", "IVR", "mute truth", "mute", "TR err cs",
                 "TR err twin", "TR err plain"], rows)
        + "\n"
    )
    if not args.no_write:
        write_section("callstate_accuracy", "Call state: hold, IVR, tones, mute", body)
    sys.stdout.write(body)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
