"""The real LED controller firmware under the MicroPython unix port, driven by the real host driver
(pacelight.cues.outputs.SerialLed) over a pty. Only machine/neopixel are shimmed."""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

import pytest
import serial
from _ledfw_helpers import LEDFW, SHIM, FirmwareBoard, hue_matches, micropython_bin
from pacelight.cues import ledproto
from pacelight.cues.outputs import SerialLed, SerialLedSettings

pytestmark = pytest.mark.skipif(micropython_bin() is None, reason="MicroPython unix port not installed")

# ledfw/config.py CUES / FAILSAFE_* (the firmware's defaults)
COLOURS = {
    ("overtalk", ""): (255, 40, 0),
    ("monologue", ""): (255, 150, 0),
    ("pace", ""): (0, 90, 255),
    ("energy", "calm"): (150, 0, 255),
    ("energy", "more-energy"): (0, 255, 80),
}
FAILSAFE_MAX = 6  # FAILSAFE_BRIGHTNESS: dim white


def is_failsafe(rgb: tuple[int, int, int]) -> bool:
    return 0 < max(rgb) <= FAILSAFE_MAX and max(rgb) - min(rgb) <= 1


@pytest.fixture()
def board(tmp_path: Path):
    b = FirmwareBoard(tmp_path).plug()
    yield b
    b.unplug()


class Raw:
    """A bare protocol client (no heartbeats of its own) for error and watchdog checks."""

    def __init__(self, port: str) -> None:
        self.ser = serial.Serial(port, timeout=0.05)
        self.buf = b""

    def send(self, seq: int, body: str) -> None:
        self.ser.write(ledproto.frame(seq, body))

    def replies(self, want: int, timeout_s: float = 2.0) -> list[ledproto.Reply]:
        out: list[ledproto.Reply] = []
        end = time.monotonic() + timeout_s
        while len(out) < want and time.monotonic() < end:
            self.buf += self.ser.read(256)
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                rep = ledproto.parse(line)
                assert rep is not None, f"damaged reply {line!r}"
                if rep.words[0] != "BOOT":
                    out.append(rep)
        return out

    def close(self) -> None:
        self.ser.close()


def test_handshake_and_every_cue(board: FirmwareBoard) -> None:
    led = SerialLed(board.port).start()
    try:
        assert led.wait_connected(5.0), board.stderr_tail
        assert led.board_id == "e66140000000beef"
        assert led.firmware_version == "1.0.0"
        for (kind, detail), rgb in COLOURS.items():
            led.set_cue(kind, detail)
            hit = board.wait_pixel(lambda px, rgb=rgb: hue_matches(px, rgb), 3.0)
            assert hit is not None, f"{kind}/{detail} not shown; last pixel {board.pixel()}"
        led.set_cue("off")
        assert board.wait_pixel(lambda px: px == (0, 0, 0), 3.0) is not None
        # heartbeats keep it out of fail-safe well past 3 s
        time.sleep(3.6)
        assert board.pixel() == (0, 0, 0)
    finally:
        led.close()


def test_garbage_and_oversized_lines_get_errors_never_crash(board: FirmwareBoard) -> None:
    raw = Raw(board.port)
    try:
        rng = random.Random(7)
        garbage = bytes(rng.randrange(256) for _ in range(3000)).replace(b"\n", b"")
        raw.ser.write(garbage + b"\n")
        raw.ser.write(b"A" * 500 + b"\n")  # oversized
        raw.ser.write(b"PL1 9 HB *00\n")  # bad CRC
        raw.send(10, "FROB")  # unknown command
        raw.send(11, "CUE sparkle")  # unknown kind
        raw.send(12, "CUE pace c=zz0000")  # bad colour
        head = b"PL2 13 HB"
        raw.ser.write(head + b" *%02X\n" % ledproto.crc8(head))  # unknown protocol version
        reps = raw.replies(7)
        codes = [(r.seq, r.words[:2]) for r in reps]
        assert codes[0][1][0] == "ERR"  # the garbage line
        assert codes[1:] == [(0, ("ERR", "LEN")), (9, ("ERR", "CRC")), (10, ("ERR", "CMD")),
                             (11, ("ERR", "ARG")), (12, ("ERR", "ARG")), (0, ("ERR", "VER"))]
        raw.send(14, "HELLO")
        (rep,) = raw.replies(1)
        assert rep.seq == 14 and rep.words[:2] == ("OK", "HELLO")
        assert board.alive
    finally:
        raw.close()


def test_heartbeat_loss_fails_safe_within_3_5_s(board: FirmwareBoard) -> None:
    raw = Raw(board.port)
    try:
        raw.send(1, "HELLO")
        raw.send(2, "CUE overtalk")
        assert [r.words[:2] for r in raw.replies(2)] == [("OK", "HELLO"), ("OK", "CUE")]
        t_last = time.monotonic()
        assert board.wait_pixel(lambda px: hue_matches(px, COLOURS[("overtalk", "")]), 2.0)
        hit = board.wait_pixel(is_failsafe, 4.5)
        assert hit is not None, board.pixel()
        assert hit[0] - t_last <= 3.5
        (rep,) = raw.replies(1, timeout_s=1.0)
        assert rep.words == ("FAILSAFE",)
        raw.send(3, "STATUS")
        (rep,) = raw.replies(1)
        assert rep.words[:3] == ("OK", "STATUS", "failsafe")
        # a heartbeat ends the fail-safe: LED off until the host sends a cue again (no stale cue)
        raw.send(4, "HB")
        (rep,) = raw.replies(1)
        assert rep.words == ("OK", "HB", "off")
        assert board.wait_pixel(lambda px: px == (0, 0, 0), 2.0) is not None
    finally:
        raw.close()


def test_unplug_and_reconnect_restores_the_cue(board: FirmwareBoard) -> None:
    led = SerialLed(board.port, SerialLedSettings(backoff_max_s=0.4)).start()
    try:
        assert led.wait_connected(5.0)
        led.set_cue("pace")
        assert board.wait_pixel(lambda px: hue_matches(px, COLOURS[("pace", "")]), 3.0)
        board.unplug()
        deadline = time.monotonic() + 5.0
        while led.connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not led.connected.is_set()
        time.sleep(1.0)  # stays unplugged for a while: the driver keeps retrying with backoff
        board.pixels.clear()
        board.plug()
        assert led.wait_connected(5.0)
        assert led.connections == 2
        assert board.wait_pixel(lambda px: hue_matches(px, COLOURS[("pace", "")]), 3.0)
    finally:
        led.close()
    # an orderly close switches the LED off
    assert board.wait_pixel(lambda px: px == (0, 0, 0), 2.0) is not None


def test_animator_and_line_reader_do_not_allocate(tmp_path: Path) -> None:
    script = tmp_path / "noalloc.py"
    script.write_text(
        "import micropython, time, pl_state, pl_proto\n"
        "s = pl_state.LedState(0)\n"
        "s.set_cue('pace', '', (0, 90, 255), pl_state.P_BREATHE, 96, 0)\n"
        "rd = pl_proto.LineReader()\n"
        "line = b'PL1 1 HB *00'\n"
        "def hot(s, rd, line):\n"
        "    n = 0\n"
        "    t = 0\n"
        "    while t < 20000:\n"
        "        t += 20\n"
        "        s.frame(t)\n"
        "        s.check_watchdog(t)\n"
        "        for b in line:\n"
        "            rd.feed(b)\n"
        "        if rd.feed(10) == 1:\n"
        "            n += 1\n"
        "            rd.reset()\n"
        "    return n\n"
        "n = 0\n"
        "micropython.heap_lock()\n"
        "n = hot(s, rd, line)\n"
        "micropython.heap_unlock()\n"
        "print('ok', n, s.failsafe)\n")
    env = dict(os.environ, MICROPYPATH=f".frozen:{SHIM}:{LEDFW}")
    out = subprocess.run([micropython_bin(), str(script)], capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == ["ok", "1000", "True"]
