# pacelight LED controller: the hardware layer (the only module that touches machine/neopixel/USB serial).
import sys
import select

import machine
import neopixel

import config


class Board:
    def __init__(self):
        self.np = neopixel.NeoPixel(machine.Pin(config.PIXEL_PIN), config.PIXEL_COUNT)
        self.px = self.np.buf  # raw GRB bytes: writing them directly avoids a tuple per frame
        self.rx = sys.stdin.buffer  # USB CDC serial (the REPL port): host protocol lines
        self.tx = sys.stdout.buffer
        self.poller = select.poll()
        self.poller.register(sys.stdin, select.POLLIN)
        self.one = bytearray(1)
        self.board_id = "".join("%02x" % b for b in machine.unique_id())

    def show(self, rgb):
        # rgb: bytearray(3); every pixel shows the same colour
        px = self.px
        r = rgb[0]
        g = rgb[1]
        b = rgb[2]
        i = 0
        n = len(px)
        while i < n:
            if config.PIXEL_ORDER_GRB:
                px[i] = g
                px[i + 1] = r
            else:
                px[i] = r
                px[i + 1] = g
            px[i + 2] = b
            i += 3
        self.np.write()

    def read_byte(self):
        # -> 0..255, -1 when nothing is waiting, -2 when the port is gone/closed. No allocation.
        for _obj, ev in self.poller.ipoll(0):
            if ev & select.POLLIN:
                try:
                    if self.rx.readinto(self.one) == 1:
                        return self.one[0]
                except OSError:
                    pass
            return -2
        return -1

    def write(self, data):
        try:
            self.tx.write(data)
        except OSError:
            pass
