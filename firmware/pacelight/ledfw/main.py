# pacelight LED controller firmware (MicroPython). Boots into three asyncio tasks:
# serial reader (protocol lines), LED animator (gentle fades), heartbeat watchdog (fail-safe).
import time

import asyncio
from micropython import const

import board
import config
import pl_proto
import pl_state

_READ_IDLE_MS = const(5)
_WATCHDOG_MS = const(100)


class Controller:
    def __init__(self, hw):
        self.hw = hw
        self.state = pl_state.LedState(time.ticks_ms())
        self.reader = pl_proto.LineReader()

    def reply(self, seq, body):
        self.hw.write(pl_proto.frame(seq, body))

    def handle_line(self, buf, n):
        try:
            seq, cmd, args = pl_proto.parse(buf, n)
        except ValueError as e:
            self.reply(e.args[1], "ERR " + e.args[0])
            return
        now = time.ticks_ms()
        st = self.state
        if cmd == "HB":
            st.feed(now)
            self.reply(seq, "OK HB " + st.mode())
        elif cmd == "HELLO":
            st.feed(now)
            self.reply(seq, "OK HELLO %s %s %d %d" % (self.hw.board_id, pl_proto.FW_VERSION, pl_proto.PROTO,
                                                      pl_proto.MAX_LINE))
        elif cmd == "CUE":
            err = self.set_cue(args, now)
            if err:
                self.reply(seq, "ERR " + pl_proto.E_ARG + " " + err)
            else:
                st.last_hb = now
                self.reply(seq, "OK CUE " + st.kind)
        elif cmd == "STATUS":
            o = st.out
            self.reply(seq, "OK STATUS %s %d %d %d" % (st.mode(), o[0], o[1], o[2]))
        else:
            self.reply(seq, "ERR " + pl_proto.E_CMD)

    def set_cue(self, args, now):
        if not args or args[0] not in pl_state.KINDS:
            return "kind"
        kind = args[0]
        detail = ""
        rgb = None
        pattern = None
        bright = config.BRIGHTNESS
        for a in args[1:]:
            k, sep, v = a.partition("=")
            if not sep:
                return a
            try:
                if k == "d":
                    detail = v
                elif k == "c":
                    if len(v) != 6:
                        return a
                    x = int(v, 16)
                    rgb = ((x >> 16) & 255, (x >> 8) & 255, x & 255)
                elif k == "p":
                    if v not in pl_state.PATTERNS:
                        return a
                    pattern = pl_state.PATTERNS[v]
                elif k == "b":
                    bright = int(v)
                    if bright < 0 or bright > 255:
                        return a
                else:
                    return a
            except ValueError:
                return a
        if kind != "off":
            key = kind + "/" + detail if detail else kind
            base = config.CUES.get(key) or config.CUES[kind]
            if rgb is None:
                rgb = (base[0], base[1], base[2])
            if pattern is None:
                pattern = pl_state.PATTERNS[base[3]]
        else:
            pattern = pl_state.P_OFF
        self.state.set_cue(kind, detail, rgb, pattern, bright, now)
        return None

    async def serial_task(self):
        hw = self.hw
        rd = self.reader
        while True:
            b = hw.read_byte()
            if b < 0:
                await asyncio.sleep_ms(_READ_IDLE_MS if b == -1 else 100)
                continue
            r = rd.feed(b)
            if r == 1:
                self.handle_line(rd.buf, rd.n)
                rd.reset()
            elif r == 2:
                self.reply(0, "ERR " + pl_proto.E_LEN)
            elif r == 3:
                self.reply(0, "ERR " + pl_proto.E_CHAR)

    async def animator_task(self):
        hw = self.hw
        st = self.state
        hw.show(st.out)
        while True:
            if st.frame(time.ticks_ms()):
                hw.show(st.out)
            await asyncio.sleep_ms(config.FRAME_MS)

    async def watchdog_task(self):
        st = self.state
        while True:
            if st.check_watchdog(time.ticks_ms()):
                self.reply(0, "FAILSAFE")
            await asyncio.sleep_ms(_WATCHDOG_MS)

    async def run(self):
        self.reply(0, "BOOT %s %s" % (self.hw.board_id, pl_proto.FW_VERSION))
        await asyncio.gather(self.serial_task(), self.animator_task(), self.watchdog_task())


def run():
    asyncio.run(Controller(board.Board()).run())


run()
