# pacelight LED controller: cue state, watchdog and the animator (integer maths, no allocation per frame).
from micropython import const
import time

import config

P_OFF = const(0)
P_SOLID = const(1)
P_BREATHE = const(2)
P_PULSE = const(3)
PATTERNS = {"off": P_OFF, "solid": P_SOLID, "breathe": P_BREATHE, "pulse": P_PULSE}
KINDS = ("off", "overtalk", "monologue", "pace", "energy")

_BREATHE_MS = const(4000)
_PULSE_MS = const(1500)


def _wave(t_ms, period, floor):
    # triangle wave 0..255 → floor..255 (integer only)
    ph = t_ms % period
    half = period >> 1
    v = (ph * 255) // half if ph < half else ((period - ph) * 255) // half
    return floor + ((255 - floor) * v) // 255


class LedState:
    def __init__(self, now_ms):
        self.kind = "off"
        self.detail = ""
        self.failsafe = False
        self.last_hb = now_ms
        self.t0 = now_ms
        self.target = bytearray(3)  # colour of the cue (before brightness/pattern)
        self.pattern = P_OFF
        self.bright = 0
        self.out = bytearray(3)  # what the LED shows now (after fades)
        self.step = max(1, (255 * config.FRAME_MS) // config.FADE_MS)

    def feed(self, now_ms):
        # a valid host command arrived: the link is alive
        self.last_hb = now_ms
        if self.failsafe:
            self.failsafe = False
            self._set(0, 0, 0, P_OFF, 0, now_ms)

    def set_cue(self, kind, detail, rgb, pattern, bright, now_ms):
        self.kind = kind
        self.detail = detail
        self.failsafe = False
        if kind == "off":
            self._set(0, 0, 0, P_OFF, 0, now_ms)
        else:
            self._set(rgb[0], rgb[1], rgb[2], pattern, bright, now_ms)

    def _set(self, r, g, b, pattern, bright, now_ms):
        t = self.target
        t[0] = r
        t[1] = g
        t[2] = b
        self.pattern = pattern
        self.bright = bright
        self.t0 = now_ms

    def check_watchdog(self, now_ms):
        # True when the fail-safe just engaged
        if self.failsafe or time.ticks_diff(now_ms, self.last_hb) < config.FAILSAFE_AFTER_MS:
            return False
        self.failsafe = True
        self.kind = "off"
        self.detail = ""
        fr = config.FAILSAFE_RGB
        self._set(fr[0], fr[1], fr[2], PATTERNS[config.FAILSAFE_PATTERN], config.FAILSAFE_BRIGHTNESS, now_ms)
        return True

    def mode(self):
        return "failsafe" if self.failsafe else self.kind

    def frame(self, now_ms):
        # advance the animation one frame; returns True when self.out changed. No allocation.
        p = self.pattern
        if p == P_OFF:
            level = 0
        elif p == P_SOLID:
            level = 255
        elif p == P_BREATHE:
            level = _wave(time.ticks_diff(now_ms, self.t0), _BREATHE_MS, 90)
        else:
            level = _wave(time.ticks_diff(now_ms, self.t0), _PULSE_MS, 128)
        scale = self.bright * level  # 0..65025
        changed = False
        step = self.step
        t = self.target
        o = self.out
        for i in range(3):
            want = (t[i] * scale) // 65025
            cur = o[i]
            if cur < want:
                cur = want if want - cur <= step else cur + step
            elif cur > want:
                cur = want if cur - want <= step else cur - step
            else:
                continue
            o[i] = cur
            changed = True
        return changed
