"""Shared pytest fixtures (owned by the MQTT/aggregator area; reusable by every test module).

* ``make_summary(call_id=None, device_id="dev-1", **overrides)`` — a valid :class:`CallSummary`.
* ``data_dir`` — a temp data directory, exported as ``$PACELIGHT_DATA_DIR``.
* ``mosquitto`` — the real Debian mosquitto on a free loopback port (``.url``, ``.host``,
  ``.port``, ``.kill()``, ``.restart()``); ``mosquitto_factory()`` for more brokers.
  Same generated config as the embedded broker, so it is authenticated (issue 10): ``.url``
  carries the local-tools credential (``mqtt://pacelight-local:PW@127.0.0.1:PORT``, may act
  for any device); ``.plain_url`` has none; ``.credential(role)``, ``.provision(device_id)``
  (→ password), ``.revoke(device_id)``, ``.auth(paho_client)``, ``.security``; pass
  ``tls=True`` to the factory for a TLS listener too (``.tls_port``, ``.tls_url``).
* ``sqlite_store`` — a :class:`pacelight_host.store.Store` on a temp SQLite file.
* ``aggregator`` — an in-process :class:`pacelight_host.ingest.Aggregator` on ``mosquitto`` and
  ``sqlite_store``, subscribed (``.store``, ``.stats``).
* ``postgres_url`` (session) — a throwaway PostgreSQL cluster (initdb/pg_ctl from
  /usr/lib/postgresql/*/bin, run as an unprivileged user when root); skips when impossible.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary_dict(call_id: str | None = None, device_id: str = "dev-1", **overrides) -> dict:
    """A valid call summary as a dict (``overrides`` replace top-level keys)."""
    from pacelight.summary import example_summary

    return example_summary(call_id or f"call-{uuid.uuid4().hex[:16]}", device_id,
                           model={"tone": "tone-test 0", "pipeline": "pacelight test"}, **overrides)


def build_summary(call_id: str | None = None, device_id: str = "dev-1", **overrides):
    from pacelight.summary import CallSummary

    return CallSummary.model_validate(summary_dict(call_id, device_id, **overrides))


@pytest.fixture
def make_summary() -> Callable:
    return build_summary


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("PACELIGHT_DATA_DIR", str(d))
    return d


class Broker:
    """A real mosquitto (same generated config as the embedded broker) on a fixed port."""

    def __init__(self, state_dir: Path, port: int | None = None, tls: bool = False) -> None:
        from pacelight_host.broker import EmbeddedBroker

        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls_port = free_port() if tls else None
        self._b = EmbeddedBroker(state_dir, self.host, self.port,
                                 tls_listen=(self.host, self.tls_port) if tls else None)
        self.security = self._b.security

    def credential(self, role: str = "local"):
        """``local`` (any device) or ``aggregator`` credential of this broker."""
        cred = self.security.service_credential(role)
        if cred is None:
            raise RuntimeError("broker not started yet")
        return cred

    @property
    def url(self) -> str:
        c = self.credential("local")
        return f"mqtt://{c.username}:{c.password}@{self.host}:{self.port}"

    @property
    def plain_url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://localhost:{self.tls_port}"

    def provision(self, device_id: str) -> str:
        pw = self.security.provision_device(device_id, force=True)
        self._b.reload()
        return pw

    def revoke(self, device_id: str) -> None:
        self.security.revoke_device(device_id)
        self._b.reload()

    def auth(self, client, role: str = "local"):
        """Set this broker's ``role`` credential on a paho client; returns the client."""
        c = self.credential(role)
        client.username_pw_set(c.username, c.password)
        return client

    @property
    def proc(self):
        return self._b.proc

    def start(self) -> Broker:
        self._b.start()
        return self

    def stop(self) -> None:
        self._b.stop()

    def kill(self) -> None:
        """SIGKILL (no persistence save)."""
        p = self._b.proc
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(5)

    def restart(self) -> None:
        self.kill()
        self._b.proc = None
        self.start()

    def alive(self) -> bool:
        return self._b.alive()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    if not (os.access("/usr/sbin/mosquitto", os.X_OK) or shutil.which("mosquitto")):
        pytest.skip("mosquitto is not installed")
    brokers: list[Broker] = []

    def factory(port: int | None = None, tls: bool = False) -> Broker:
        b = Broker(tmp_path / f"broker{len(brokers)}", port, tls).start()
        brokers.append(b)
        return b

    yield factory
    for b in brokers:
        b.stop()


@pytest.fixture
def mosquitto(mosquitto_factory) -> Broker:
    return mosquitto_factory()


@pytest.fixture
def sqlite_store(tmp_path: Path):
    from pacelight_host.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'host.sqlite'}")
    yield store
    store.close()


@pytest.fixture
def aggregator(mosquitto: Broker, sqlite_store):
    from pacelight_host.ingest import Aggregator

    agg = Aggregator(sqlite_store, mosquitto.url, client_id=f"agg-test-{uuid.uuid4().hex[:6]}").start()
    if not agg.wait_ready(10):
        agg.stop()
        pytest.fail("aggregator did not subscribe")
    yield agg
    agg.stop()


def _pg_bin() -> Path | None:
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(cands[-1]).parent if cands else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster in a temp dir; skips cleanly when it cannot start."""
    env_url = os.environ.get("PACELIGHT_TEST_POSTGRES_URL")
    if env_url:
        yield env_url
        return
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg not installed")
    run_as: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        for cand in ("postgres", "nobody"):
            try:
                pwd.getpwnam(cand)
            except KeyError:
                continue
            user = cand
            break
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser")
        run_as = [runuser, "-u", user, "--"]
    base = Path(tempfile.mkdtemp(prefix="pacelight-pg-"))
    os.chmod(base, 0o777)
    pgdata, sock = base / "data", base / "sock"
    sock.mkdir()
    os.chmod(sock, 0o777)
    if os.getuid() == 0:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chown(sock, pw.pw_uid, pw.pw_gid)
    port = free_port()

    def run(*cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*run_as, *cmd], capture_output=True, text=True, timeout=timeout, cwd=str(base))

    r = run(str(bindir / "initdb"), "-D", str(pgdata), "-U", "pacelight", "--auth=trust", "-E", "UTF8",
            "--no-sync")
    if r.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {r.stderr.strip()[-300:]}")
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    r = run(str(bindir / "pg_ctl"), "-D", str(pgdata), "-o", opts, "-l", str(base / "pg.log"), "-w", "start")
    if r.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"pg_ctl start failed: {r.stderr.strip()[-300:]}")
    try:
        yield f"postgresql://pacelight@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def utc(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)
