"""`pacelight analyze CALL.wav` — offline analysis with the appliance's own streaming pipeline."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "analyze a recorded call (WAV; channel 0 agent, 1 customer) and print its summary"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help=HELP,
        description=HELP + ". Runs exactly the appliance's streaming pipeline, fed from a file. "
        "A mono file is the agent alone. Exit status 2 on bad input.",
    )
    p.add_argument("wav", metavar="CALL.wav", help="PCM 16-bit or float WAV, 8-48 kHz, mono or stereo")
    p.add_argument("--json", action="store_true", help="print one call summary (JSON) and nothing else")
    p.add_argument("--segments", action="store_true", help="add the talk/overlap timeline to the JSON")
    p.add_argument("--lang", default="en", help="call language for pace targets (e.g. en, ru, zh); default en")
    p.add_argument("--config", metavar="FILE", help="device config (TOML) with pipeline/cue settings")
    p.add_argument("--device-id", default="offline", help="device id written into the summary")
    p.add_argument("--no-tone", action="store_true", help="skip the tone model (faster)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pacelight.analysis.pipeline import PipelineSettings
    from pacelight.analysis.runner import analyze_file, file_identity
    from pacelight.audio.wavfile import probe
    from pacelight.config import load_pipeline_settings

    settings = load_pipeline_settings(args.config, language=args.lang)
    info = probe(args.wav)
    summary = analyze_file(
        info.path,
        settings if isinstance(settings, PipelineSettings) else None,
        file_identity(info, args.device_id),
        with_segments=args.segments or not args.json,
        with_tone=not args.no_tone,
    )
    if args.json:
        d = summary.to_dict()
        if not args.segments:
            d.pop("segments", None)
            d.pop("overlaps", None)
        sys.stdout.write(json.dumps(d, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_report(summary, info.path.name))
    return 0


def render_report(s, name: str) -> str:
    t, o, p = s.talk, s.overtalk, s.pace

    def f(v, unit="", nd=1):
        return "—" if v is None else f"{v:.{nd}f}{unit}"

    lines = [
        f"pacelight analysis of {name}  ({s.duration_s:.1f} s)",
        "",
        f"  talk        agent {t.agent_s:6.1f} s   customer {t.customer_s:6.1f} s   "
        f"silence {t.silence_s:6.1f} s   overlap {t.overlap_s:5.1f} s",
        f"  talk ratio  agent {f(None if t.agent_ratio is None else 100 * t.agent_ratio, ' %', 0)}",
        f"  pace        agent {f(p.agent_syl_s, ' syl/s')}   customer {f(p.customer_syl_s, ' syl/s')}",
        f"  overtalk    {o.events} overlaps: interruptions agent {o.agent_interruptions} / customer "
        f"{o.customer_interruptions}, backchannels agent {o.agent_backchannels} / customer {o.customer_backchannels}",
        f"  monologue   longest agent {s.monologue.agent_longest_s:.1f} s   customer {s.monologue.customer_longest_s:.1f} s",
    ]
    if s.latency is not None:
        lines.append(f"  response    agent median {f(s.latency.agent_response_median_s, ' s', 2)} "
                     f"over {s.latency.agent_responses} customer turns")
    for party in ("agent", "customer"):
        pt = getattr(s.tone, party)
        if pt.mean_score is not None:
            lines.append(f"  tone {party:<8} low {pt.low:.0%}  neutral {pt.neutral:.0%}  high {pt.high:.0%}  "
                         f"(mean arousal {pt.mean_score:.2f})")
    if s.cues:
        on = [c for c in s.cues if c.state == "on"]
        lines.append(f"  LED cues    {len(on)}: " + ", ".join(f"{c.kind}@{c.t:.0f}s" for c in on[:12]))
    else:
        lines.append("  LED cues    none")
    lines.append(f"  model       {s.model.tone} / {s.model.pipeline}")
    return "\n".join(lines) + "\n"
