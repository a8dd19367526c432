"""Host side of the LED serial protocol v1 (firmware/LED_PROTOCOL.md): framing and parsing.

Mirrors ``ledfw/pl_proto.py`` (the MicroPython side); the firmware tests run both against each
other over a pty, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass

MAGIC = "PL1"
PROTO = 1
MAX_LINE = 96  # bytes including "\n"


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS (poly 0x07, init 0, no reflection)."""
    c = 0
    for x in data:
        c ^= x
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def frame(seq: int, body: str) -> bytes:
    """``PL1 <seq> <body> *<CRC>\\n``; raises ValueError when it would exceed MAX_LINE."""
    head = f"{MAGIC} {seq} {body}".encode("ascii")
    line = head + b" *%02X\n" % crc8(head)
    if len(line) > MAX_LINE:
        raise ValueError(f"LED protocol line too long ({len(line)} > {MAX_LINE} bytes)")
    return line


@dataclass(frozen=True, slots=True)
class Reply:
    seq: int
    words: tuple[str, ...]  # e.g. ("OK", "HB", "pace"), ("ERR", "CRC"), ("BOOT", id, fw), ("FAILSAFE",)

    @property
    def ok(self) -> bool:
        return bool(self.words) and self.words[0] == "OK"


def parse(line: bytes) -> Reply | None:
    """Parse one line from the controller; None when damaged (bad CRC/syntax)."""
    text = line.rstrip(b"\r\n")
    if len(text) < 8 or text[-4:-2] != b" *":
        return None
    head, crc_hex = text[:-4], text[-2:]
    try:
        if crc8(head) != int(crc_hex, 16):
            return None
        parts = head.decode("ascii").split()
    except (ValueError, UnicodeDecodeError):
        return None
    if len(parts) < 3 or parts[0] != MAGIC or not parts[1].isdigit():
        return None
    return Reply(int(parts[1]), tuple(parts[2:]))
