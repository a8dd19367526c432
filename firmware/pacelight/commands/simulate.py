"""``pacelight simulate``: write simulated two-party calls with exact ground truth."""

from __future__ import annotations

import argparse
import sys
import time

from pacelight.errors import InputError

HELP = """\
Simulate call-centre calls as stereo 16-bit WAV files plus ground truth.

Each call DIR/call-NNN.wav has channel 0 = agent (headset microphone) and channel 1 =
customer (receive path); DIR/call-NNN.truth.json holds the exact truth computed from the clean
per-party speech before any channel effects: talk segments (10 ms grid, pauses < 0.2 s
bridged), overlaps classified as backchannel/interruption/overlap, talk seconds, overtalk
counts, pace in syllables/s, every utterance (text or clip, voice, espeak speed, syllables)
and the chosen effect levels. Speech comes from espeak-ng (en, ru, Mandarin as tone-numbered
pinyin) and optionally real clips from $PACELIGHT_DATA_DIR (default <repo>/../shared/data).
The same --seed gives byte-identical files. espeak renders are cached in
$PACELIGHT_CACHE_DIR/tts (default ~/.cache/pacelight/tts).
"""

EPILOG = """\
examples:
  pacelight simulate --out /tmp/calls --n 30 --seed 7 --minutes 1.5
  pacelight simulate --out /tmp/clean --n 5 --seed 1 --effects clean --sources tts --langs en
  pacelight simulate --out /tmp/fast --n 3 --seed 2 --agent-speed 220..260 --rate-change agent:45:1.15
"""


def _range(text: str) -> tuple[int, int]:
    try:
        lo, _, hi = text.partition("..")
        return int(lo), int(hi or lo)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected LO..HI words per minute, got {text!r}") from exc


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("simulate", help="write simulated calls (stereo WAV + truth JSON)",
                              description=HELP, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--n", type=int, default=1, help="number of calls (default 1)")
    p.add_argument("--seed", type=int, default=0, help="run seed; same seed → identical output (default 0)")
    p.add_argument("--minutes", type=float, default=1.5, help="length of each call in minutes (default 1.5)")
    p.add_argument("--langs", default="en,ru,cmn", help="languages to draw from per call (default en,ru,cmn)")
    p.add_argument("--rate", type=int, default=16000, choices=(8000, 16000, 44100, 48000),
                   help="output sample rate in Hz (default 16000)")
    p.add_argument("--effects", choices=("all", "clean"), default="all",
                   help="all: telephone codec, echo, sidetone, noise, babble, levels; clean: levels only")
    p.add_argument("--sources", default="tts,clips", help="speech sources: tts, clips or both (default both)")
    p.add_argument("--clip-arousal", default=None, metavar="LABELS",
                   help="only use manifest clips with these arousal labels, e.g. high or low,neutral")
    p.add_argument("--agent-speed", type=_range, default=(140, 220), metavar="LO..HI",
                   help="agent espeak speed range in wpm (default 140..220)")
    p.add_argument("--customer-speed", type=_range, default=(140, 220), metavar="LO..HI",
                   help="customer espeak speed range in wpm (default 140..220)")
    p.add_argument("--rate-change", default=None, metavar="PARTY:AT_S:FACTOR",
                   help="change one party's speed mid-call, e.g. customer:40:0.85")
    p.add_argument("--call-state", action="store_true",
                   help="add music on hold, IVR prompts, DTMF, ringback/busy tones and agent mute (with truth)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pacelight.sim.call import CallSpec, RateChange, write_calls

    if args.n < 1:
        raise InputError("--n must be at least 1")
    rate_change = None
    if args.rate_change:
        try:
            party, at_s, factor = args.rate_change.split(":")
            rate_change = RateChange(party, float(at_s), float(factor))  # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(f"--rate-change: {exc}") from exc
    try:
        spec = CallSpec(
            duration_s=round(args.minutes * 60.0, 2),
            langs=tuple(x.strip() for x in args.langs.split(",") if x.strip()),
            rate_hz=args.rate,
            agent_speed_wpm=args.agent_speed,
            customer_speed_wpm=args.customer_speed,
            rate_change=rate_change,
            sources=tuple(x.strip() for x in args.sources.split(",") if x.strip()),
            clip_arousal=tuple(args.clip_arousal.split(",")) if args.clip_arousal else None,
            effects=args.effects == "all",
            call_state=args.call_state,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    t0 = time.monotonic()

    def progress(i: int, n: int, call: object) -> None:
        if not args.quiet:
            el = time.monotonic() - t0
            eta = el / (i + 1) * (n - i - 1)
            print(f"\rsimulate: {i + 1}/{n} calls, {el:.0f} s elapsed, ~{eta:.0f} s left ",  # noqa: T201
                  end="" if i + 1 < n else "\n", file=sys.stderr, flush=True)

    paths = write_calls(args.out, args.n, args.seed, progress=progress, spec=spec)
    if not args.quiet:
        print(f"simulate: wrote {len(paths)} calls to {args.out}", file=sys.stderr)  # noqa: T201
    return 0
