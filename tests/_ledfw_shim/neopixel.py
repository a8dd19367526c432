# Test shim of MicroPython's `neopixel`: reports every change of pixel 0 on stderr as "NP <ms> r g b".
import sys
import time


class NeoPixel:
    ORDER = (1, 0, 2, 3)

    def __init__(self, pin, n, bpp=3, timing=1):
        self.pin = pin
        self.n = n
        self.buf = bytearray(n * bpp)
        self._last = bytearray(3)

    def write(self):
        g, r, b = self.buf[0], self.buf[1], self.buf[2]
        last = self._last
        if last[0] != r or last[1] != g or last[2] != b:
            last[0], last[1], last[2] = r, g, b
            sys.stderr.write(f"NP {time.ticks_ms()} {r} {g} {b}\n")
