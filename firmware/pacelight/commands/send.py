"""``pacelight send SUMMARY.json``: queue one summary in the outbox and wait for the host's ack.

Exit 0 only after the aggregator acked this ``call_id`` as stored; non-zero with a one-line
reason on timeout (the summary stays in the outbox and is resent next time) or rejection.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("send", help="send one call summary over MQTT and wait for the host's ack")
    p.add_argument("summary", metavar="SUMMARY.json", help="call summary JSON file")
    p.add_argument("--broker", metavar="URL", help="mqtt[s]://HOST:PORT")
    p.add_argument("--device-id", metavar="ID", required=True, help="device id (MQTT client id and topic)")
    p.add_argument("--bundle", metavar="DIR", help="device bundle directory (credentials, CA, config)")
    p.add_argument("--outbox", metavar="PATH", help="outbox SQLite file (default: outbox-<ID>.sqlite in "
                   "the data directory)")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=30.0,
                   help="how long to wait for the ack (default 30)")
    p.set_defaults(func=run)


def load_bundle(path: Path) -> dict:
    """Read what a device bundle provides (provisional layout; the security issue owns it):
    ``config.json`` (``broker``, ``device_id``), ``credentials.json`` (``username``,
    ``password``), ``ca.crt``, ``device.crt``/``client.crt``, ``device.key``/``client.key``."""
    from pacelight.errors import InputError

    if not path.is_dir():
        raise InputError(f"bundle {path} is not a directory")
    out: dict = {}
    for name in ("config.json", "credentials.json"):
        f = path / name
        if f.exists():
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError) as exc:
                raise InputError(f"bad bundle file {f}: {exc}") from None
            if not isinstance(data, dict):
                raise InputError(f"bad bundle file {f}: not a JSON object")
            out.update({k: v for k, v in data.items() if k in ("broker", "device_id", "username", "password")})
    for key, names in (("ca_file", ("ca.crt", "ca.pem")), ("cert_file", ("device.crt", "client.crt")),
                       ("key_file", ("device.key", "client.key"))):
        for n in names:
            if (path / n).exists():
                out[key] = str(path / n)
                break
    return out


def local_tools_credential(data_dir: Path, tls: bool = False) -> dict:
    """The credential the aggregator keeps for local tools (``security/local-tools.json`` in its
    data directory, 0600; CONTRACT section 5) plus its CA certificate; {} when absent."""
    out: dict = {}
    sec = data_dir / "security"
    try:
        data = json.loads((sec / "local-tools.json").read_text())
        out = {"username": str(data["username"]), "password": str(data["password"])}
    except (OSError, ValueError, KeyError, TypeError):
        log.debug("no local-tools credential in %s", sec)
    if tls and (sec / "ca.crt").exists():
        out["ca_file"] = str(sec / "ca.crt")
    return out


def run(args: argparse.Namespace) -> int:
    from pacelight.edge.mqtt_url import parse_broker_url
    from pacelight.edge.outbox import Outbox
    from pacelight.edge.paths import default_data_dir
    from pacelight.edge.publisher import Publisher, PublisherSettings
    from pacelight.errors import InputError, PacelightError
    from pacelight.summary import ID_PATTERN, parse_summary

    if not re.match(ID_PATTERN, args.device_id):
        raise InputError(f"bad device id {args.device_id!r}")
    if args.timeout <= 0:
        raise InputError("--timeout must be positive")
    path = Path(args.summary)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        summary = parse_summary(raw)
    except ValueError as exc:
        raise InputError(f"{path} is not a valid call summary: {' '.join(str(exc).split())[:300]}") from None
    if summary.device_id != args.device_id:
        raise InputError(f"summary device_id {summary.device_id!r} differs from --device-id {args.device_id!r}")

    bundle = load_bundle(Path(args.bundle)) if args.bundle else {}
    broker = args.broker or bundle.get("broker")
    if not broker:
        raise InputError("--broker URL is required (or a bundle with config.json 'broker')")
    url = parse_broker_url(broker)
    if not args.bundle and url.username is None:
        # the aggregator may still be starting (it creates the credential): wait a bounded while
        import time

        deadline = time.monotonic() + args.timeout / 2
        delay = 0.05
        while not (cred := local_tools_credential(default_data_dir(), url.tls)).get("username"):
            if time.monotonic() >= deadline:
                log.info("no local-tools credential in %s: connecting anonymously", default_data_dir())
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        bundle.update(cred)
    outbox_path = Path(args.outbox) if args.outbox else default_data_dir() / f"outbox-{args.device_id}.sqlite"

    done = threading.Event()
    result: dict = {}

    def on_ack(call_id: str, status: str, reason: str | None) -> None:
        if call_id == summary.call_id:
            result.update(status=status, reason=reason)
            done.set()

    with Outbox(outbox_path) as outbox:
        outbox.put(summary)
        pub = Publisher(args.device_id, url, outbox, username=bundle.get("username"),
                        password=bundle.get("password"), ca_file=bundle.get("ca_file"),
                        cert_file=bundle.get("cert_file"), key_file=bundle.get("key_file"), on_ack=on_ack,
                        # resend a few times within --timeout (e.g. the aggregator was still starting)
                        settings=PublisherSettings(ack_timeout_s=max(1.0, min(5.0, args.timeout / 4)),
                                                   backoff_max_s=max(0.5, min(5.0, args.timeout / 4))))
        pub.start()
        try:
            acked = done.wait(args.timeout)
        finally:
            pub.stop()
    if not acked:
        if pub.connections == 0:
            raise PacelightError(f"could not connect to {url} within {args.timeout:g} s "
                                 f"(summary kept in outbox {outbox_path})")
        raise PacelightError(f"no ack for {summary.call_id} from the aggregator within {args.timeout:g} s "
                             f"(summary kept in outbox {outbox_path})")
    if result["status"] != "stored":
        raise PacelightError(f"host rejected {summary.call_id}: {result.get('reason') or 'no reason given'}")
    return 0
