"""LED sinks other than the serial controller (which tests/test_ledfw.py drives against the real firmware)."""

from __future__ import annotations

import io
import sys

from pacelight.cues.outputs import GpioLed, GpioLedSettings, TerminalLed, fan_out
from pacelight.events import CueChange


class FakeRgbLed:  # the GPIO seam (gpiozero.RGBLED's interface)
    def __init__(self, r: int, g: int, b: int) -> None:
        self.pins = (r, g, b)
        self.color = (0.0, 0.0, 0.0)
        self.closed = False

    def off(self) -> None:
        self.color = (0.0, 0.0, 0.0)

    def close(self) -> None:
        self.closed = True


def test_gpio_led_is_lazy_and_maps_cues() -> None:
    assert "gpiozero" not in sys.modules  # importing outputs never touches GPIO
    made: list[FakeRgbLed] = []
    led = GpioLed(GpioLedSettings(brightness=0.5), factory=lambda *p: made.append(FakeRgbLed(*p)) or made[-1])
    assert made == []  # nothing opened until the first cue
    led.show(CueChange(t_s=1.0, kind="pace", state="on"))
    assert made[0].pins == (17, 27, 22) and made[0].color == (0.0, 0.175, 0.5)
    led.show(CueChange(t_s=2.0, kind="energy", state="on", detail="more-energy"))
    assert made[0].color == (0.0, 0.5, 0.15)
    led.show(CueChange(t_s=3.0, kind="energy", state="off", detail="more-energy"))
    assert made[0].color == (0.0, 0.0, 0.0)
    led.close()
    assert made[0].closed


def test_terminal_led_status_line_and_fan_out() -> None:
    plain, tty = io.StringIO(), io.StringIO()
    sinks = [TerminalLed(plain, colour=False), TerminalLed(tty, colour=True)]
    fan_out([CueChange(t_s=21.0, kind="overtalk", state="on"), CueChange(t_s=23.0, kind="overtalk", state="off")],
            sinks)
    assert plain.getvalue().splitlines() == ["   21.0s LED  ● overtalk: you are talking over the customer",
                                             "   23.0s LED  ○ off"]
    out = tty.getvalue()
    assert "\x1b[41;97m" in out and out.count("\r\x1b[2K") == 2 and "\n" not in out  # one status line, redrawn
