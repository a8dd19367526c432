"""``pacelight users add/list/passwd``: dashboard logins (roles supervisor and it)."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("users", help="manage dashboard logins (supervisor and IT roles)",
                       description="Dashboard users live in the aggregator's database. Supervisors see calls, "
                       "agents and teams; IT sees the fleet and manages agents, teams and desk assignments.")
    usub = p.add_subparsers(dest="users_command", metavar="ACTION")
    db_help = "sqlite:///PATH or postgresql://... (default: the aggregator's SQLite file in the data directory)"

    a = usub.add_parser("add", help="add a user")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=("supervisor", "it"))
    a.add_argument("--db", metavar="URL", help=db_help)
    a.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    a.set_defaults(func=run_add)

    ls = usub.add_parser("list", help="list users")
    ls.add_argument("--db", metavar="URL", help=db_help)
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    ls.set_defaults(func=run_list)

    pw = usub.add_parser("passwd", help="set a user's password (ends their sessions)")
    pw.add_argument("name")
    pw.add_argument("--db", metavar="URL", help=db_help)
    pw.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    pw.set_defaults(func=run_passwd)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _store(args: argparse.Namespace):
    from pacelight.edge.paths import default_data_dir
    from pacelight.errors import InputError

    from pacelight_host.store import Store

    url = args.db or f"sqlite:///{(default_data_dir() / 'pacelight.sqlite').resolve()}"
    if "://" not in url:
        raise InputError(f"bad database URL {url!r}: use sqlite:///PATH or postgresql://...")
    return Store.open(url)


def _password(args: argparse.Namespace) -> str:
    from pacelight.errors import InputError

    if args.password_stdin:
        line = sys.stdin.readline()
        pw = line.rstrip("\r\n")
        if not pw:
            raise InputError("no password on stdin")
        return pw
    import getpass

    if not sys.stdin.isatty():
        raise InputError("no terminal for the password prompt: use --password-stdin")
    pw = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != pw:
        raise InputError("the passwords differ")
    return pw


def run_add(args: argparse.Namespace) -> int:
    from pacelight_host.api.auth import Users

    pw = _password(args)
    store = _store(args)
    try:
        Users(store).add(args.name, args.role, pw)
    finally:
        store.close()
    sys.stdout.write(f"user {args.name} added ({args.role})\n")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    from pacelight_host.api.auth import Users

    pw = _password(args)
    store = _store(args)
    try:
        Users(store).set_password(args.name, pw)
    finally:
        store.close()
    sys.stdout.write(f"password of {args.name} changed; their sessions ended\n")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from pacelight_host.api.auth import Users

    store = _store(args)
    try:
        rows = Users(store).list()
    finally:
        store.close()
    if args.json:
        json.dump(rows, sys.stdout)
        sys.stdout.write("\n")
    else:
        for r in rows:
            sys.stdout.write(f"{r['username']:<24} {r['role']:<10} {r['created_at'][:19]}Z\n")
    return 0
