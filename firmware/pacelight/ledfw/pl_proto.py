# pacelight LED protocol v1 (see firmware/LED_PROTOCOL.md): framing, CRC-8 and parsing.
# Pure MicroPython (no hardware): runs on the board and under the unix port.
from micropython import const

PROTO = const(1)
MAGIC = b"PL1"
MAX_LINE = const(96)  # bytes including the trailing "\n"
FW_VERSION = "1.0.0"

# error codes
E_LEN = "LEN"  # line longer than MAX_LINE
E_CHAR = "CHAR"  # byte outside printable ASCII
E_SYNTAX = "SYNTAX"  # not "<magic> <seq> <cmd> [args] *<crc>"
E_CRC = "CRC"  # checksum mismatch
E_VER = "VER"  # unknown protocol version
E_CMD = "CMD"  # unknown command
E_ARG = "ARG"  # bad arguments

_HEX = b"0123456789ABCDEF"


def crc8(data, n):
    # CRC-8/SMBUS: poly 0x07, init 0x00, no reflection, over data[0:n]
    c = 0
    for i in range(n):
        c ^= data[i]
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def _hexval(ch):
    if 48 <= ch <= 57:
        return ch - 48
    if 65 <= ch <= 70:
        return ch - 55
    if 97 <= ch <= 102:
        return ch - 87
    return -1


class LineReader:
    # Accumulates bytes into a preallocated buffer; feed() never allocates.
    def __init__(self):
        self.buf = bytearray(MAX_LINE)
        self.mv = memoryview(self.buf)
        self.n = 0
        self.over = False
        self.bad = False

    def feed(self, b):
        # Returns 0 (line incomplete), 1 (line ready in buf[0:n]), 2 (oversized line ended),
        # 3 (line with a non-printable byte ended).
        if b == 10:
            if self.over:
                self.over = False
                self.n = 0
                return 2
            if self.bad:
                self.bad = False
                self.n = 0
                return 3
            return 1
        if b == 13:
            return 0
        if self.over:
            return 0
        if b < 32 or b > 126:
            self.bad = True
        if self.n >= MAX_LINE - 1:
            self.over = True
            self.bad = False
            return 0
        self.buf[self.n] = b
        self.n += 1
        return 0

    def reset(self):
        self.n = 0


def parse(buf, n):
    # -> (seq, cmd, args) or raises ValueError(code, seq). Allocates (once per line, not per byte).
    star = -1
    for i in range(n - 1, -1, -1):
        if buf[i] == 42:  # "*"
            star = i
            break
    if star < 1 or star != n - 3 or buf[star - 1] != 32:
        raise ValueError(E_SYNTAX, _seq_guess(buf, n))
    hi = _hexval(buf[star + 1])
    lo = _hexval(buf[star + 2])
    if hi < 0 or lo < 0:
        raise ValueError(E_SYNTAX, _seq_guess(buf, n))
    if crc8(buf, star - 1) != (hi << 4) | lo:
        raise ValueError(E_CRC, _seq_guess(buf, n))
    try:
        parts = bytes(buf[0 : star - 1]).decode().split()
    except UnicodeError:  # valid CRC over non-UTF-8 bytes: a syntax error, not a crash
        raise ValueError(E_SYNTAX, _seq_guess(buf, n))
    if len(parts) < 3:
        raise ValueError(E_SYNTAX, 0)
    if parts[0][:2] != "PL":
        raise ValueError(E_SYNTAX, 0)
    if parts[0] != "PL1":
        raise ValueError(E_VER, 0)
    try:
        seq = int(parts[1])
    except ValueError:
        raise ValueError(E_SYNTAX, 0)
    if seq < 0 or seq > 65535:
        raise ValueError(E_SYNTAX, 0)
    return seq, parts[2], parts[3:]


def _seq_guess(buf, n):
    # best effort: the sequence number of a damaged line, so the host can match the error
    i = 0
    while i < n and buf[i] != 32:
        i += 1
    i += 1
    v = 0
    d = 0
    while i < n and 48 <= buf[i] <= 57 and d < 5:
        v = v * 10 + buf[i] - 48
        i += 1
        d += 1
    return v if d and v <= 65535 else 0


def frame(seq, body):
    # "PL1 <seq> <body> *<crc>\n" as bytes
    head = b"PL1 %d %s" % (seq, body.encode() if isinstance(body, str) else body)
    c = crc8(head, len(head))
    return head + b" *" + bytes((_HEX[c >> 4], _HEX[c & 15])) + b"\n"
