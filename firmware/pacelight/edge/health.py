"""Health reporting of the appliance: an atomically written status JSON file and systemd notify.

* :class:`StatusFile` — ``/run/pacelight/status.json`` (temp file + rename, so readers never see
  a torn file): state, current call, xruns, tone skips, outbox depth, last error, counters.
* :func:`sd_notify` — the systemd notify protocol over ``$NOTIFY_SOCKET`` (a unix datagram
  socket; no extra dependency): ``READY=1``, ``WATCHDOG=1``, ``STATUS=...``, ``STOPPING=1``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


class StatusFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._warned = False

    def write(self, status: dict) -> bool:
        """Write ``status`` atomically; a failure is logged once and never raised."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".status-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(status, f, ensure_ascii=False, indent=1)
                    f.write("\n")
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            if not self._warned:
                log.warning("cannot write status file %s: %s", self.path, exc)
                self._warned = True
            return False
        self._warned = False
        return True


def read_status(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


def sd_notify(message: str) -> bool:
    """Send one notify message to systemd; False when not running under a notify-aware manager."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setblocking(False)  # never stall the caller on a full queue (a busy or stuck manager)
            s.connect(addr)
            s.send(message.encode())
        return True
    except OSError as exc:
        log.debug("sd_notify(%r) failed: %s", message, exc)
        return False


def watchdog_interval_s() -> float | None:
    """Half of systemd's WatchdogSec for this process, or None when no watchdog is armed."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.5, int(usec) / 1e6 / 2)
    except ValueError:
        return None
