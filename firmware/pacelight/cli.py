"""The ``pacelight`` console command.

Each subcommand lives in ``pacelight.commands.<name>`` (or ``pacelight_host.commands.<name>``)
and exposes ``add_parser(subparsers)``, which registers its arguments and sets ``func`` to a
callable ``(args) -> int``. Heavy imports happen inside ``func`` so that ``--help`` is fast.
Errors derived from :class:`pacelight.errors.PacelightError` print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pacelight import __version__, native_threads
from pacelight.errors import PacelightError

native_threads.apply()  # before any subcommand loads numpy: no spinning BLAS worker threads

# (module, required?) in the order shown by --help. A module whose optional extra is not
# installed is skipped with a hint instead of breaking the whole command.
COMMAND_MODULES: tuple[str, ...] = (
    "pacelight.commands.analyze",
    "pacelight.commands.tone",
    "pacelight.commands.simulate",
    "pacelight.commands.edge",
    "pacelight.commands.send",
    "pacelight.commands.flash",
    "pacelight.commands.demo",
    "pacelight_host.commands.aggregator",
    "pacelight_host.commands.calls",
    "pacelight_host.commands.provision",
    "pacelight_host.commands.users",
)

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pacelight",
        description="On-device speech coaching: talk ratio, pace, overtalk and tone for call-center "
        "agents, an LED pacing cue, and per-call summaries over MQTT.",
        epilog="Run 'pacelight COMMAND --help' for a command's options. Contract: CONTRACT.md.",
    )
    parser.add_argument("--version", action="version", version=f"pacelight {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # command not part of this installation/build yet
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PacelightError as exc:
        print(f"pacelight {args.command}: error: {exc}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
