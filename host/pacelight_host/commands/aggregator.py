"""``pacelight aggregator``: embedded broker (or an external one), MQTT ingest, storage, HTTP."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser("aggregator", help="receive call summaries over MQTT and store them",
                       description="Receive per-call summaries over MQTT (embedded mosquitto unless --broker), "
                       "validate, store idempotently and ack each call_id after the commit.")
    p.add_argument("--broker", metavar="URL", help="external broker mqtt[s]://HOST:PORT (default: embedded)")
    p.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:1883",
                   help="embedded broker listener (default 127.0.0.1:1883)")
    p.add_argument("--db", metavar="URL", help="sqlite:///PATH or postgresql://... "
                   "(default: SQLite file pacelight.sqlite in the data directory)")
    p.add_argument("--http", metavar="HOST:PORT", help="serve the REST API and dashboard")
    p.add_argument("--tls-listen", metavar="HOST:PORT", help="embedded broker: also a TLS listener for devices "
                   "(e.g. 0.0.0.0:8883; server certificate from the project CA, see 'pacelight provision')")
    p.add_argument("--data-dir", metavar="DIR", help="data directory (default $PACELIGHT_DATA_DIR or "
                   "~/.local/share/pacelight)")
    p.set_defaults(func=run)


def client_id_for(data_dir: Path) -> str:
    """A stable MQTT client id per data directory (keeps the persistent session across restarts)."""
    path = data_dir / "aggregator-id"
    try:
        cid = path.read_text().strip()
        if cid:
            return cid
    except OSError:
        pass
    cid = f"pacelight-aggregator-{secrets.token_hex(4)}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(cid + "\n")
    os.replace(tmp, path)
    return cid


def run(args: argparse.Namespace) -> int:
    from pacelight.edge.mqtt_url import parse_broker_url, parse_listen
    from pacelight.edge.paths import default_data_dir
    from pacelight.errors import InputError, PacelightError

    from pacelight_host.broker import EmbeddedBroker
    from pacelight_host.ingest import Aggregator
    from pacelight_host.store import Store

    serve = None
    if args.http:
        http_host, http_port = parse_listen(args.http, default_port=8080)
        import importlib

        try:
            api = importlib.import_module("pacelight_host.api")
        except ModuleNotFoundError as exc:
            if exc.name in ("pacelight_host.api", "pacelight_host"):
                raise PacelightError("dashboard not available") from None
            raise
        serve = api.serve

    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    db_url = args.db or f"sqlite:///{(data_dir / 'pacelight.sqlite').resolve()}"
    if "://" not in db_url:
        raise InputError(f"bad database URL {db_url!r}: use sqlite:///PATH or postgresql://...")

    stop = threading.Event()

    def _on_signal(signum, frame) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    from pacelight_host.security import FleetSecurity

    security = FleetSecurity(data_dir)
    broker = None
    creds = {}
    if args.broker:
        url = parse_broker_url(args.broker)
        cred = security.service_credential("aggregator")
        if url.username is None and cred is not None:  # this data dir's own credential
            creds = {"username": cred.username, "password": cred.password}
        if url.tls and security.ca_cert.exists():
            creds["ca_file"] = str(security.ca_cert)
    else:
        host, port = parse_listen(args.listen)
        tls_listen = parse_listen(args.tls_listen, default_port=8883) if args.tls_listen else None
        if host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("--listen %s is plain TCP (passwords in clear): prefer --tls-listen for devices", host)
        broker = EmbeddedBroker(data_dir, host, port, tls_listen=tls_listen).start()
        url = parse_broker_url(broker.url)
        cred = security.service_credential("aggregator")
        creds = {"username": cred.username, "password": cred.password}
    store = None
    agg = None
    http_thread = None
    try:
        store = Store.open(db_url)
        agg = Aggregator(store, url, client_id=client_id_for(data_dir), **creds).start()
        if serve is not None:
            http_thread = threading.Thread(target=serve, args=(store, http_host, http_port, stop),
                                           name="pacelight-http", daemon=True)
            http_thread.start()
        log.info("aggregator running: broker %s, db %s", url, store._safe_url())
        while not stop.wait(0.5):
            if broker is not None and not broker.alive():
                raise PacelightError("embedded mosquitto exited; see " + str(broker.state_dir / "mosquitto.log"))
    finally:
        stop.set()
        if agg is not None:
            agg.stop()
            log.info("ingest stats: %s", agg.stats.as_dict())
        if http_thread is not None:
            http_thread.join(10.0)
        if broker is not None:
            broker.stop()
        if store is not None:
            store.close()
    return 0
