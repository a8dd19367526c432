"""``pacelight flash --port PORT [--dry-run]``: install the LED controller firmware, verified.

Copies ``pacelight/ledfw/*.py`` to the board's filesystem with mpremote's API, writes
``pl_manifest.json`` (sha256 of every file) LAST, then has the board hash every file itself and
compares (``mpremote cp`` does not verify what it wrote). The old manifest is removed first, so a
board whose flash was interrupted has no manifest and is recognisably incomplete. Prints the board id
and firmware version. Errors are one line: no device, busy port, wrong board, verification failure.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pacelight.errors import InputError, PacelightError

log = logging.getLogger(__name__)

LEDFW_DIR = Path(__file__).resolve().parents[1] / "ledfw"
MANIFEST = "pl_manifest.json"
MANIFEST_SCHEMA = "pacelight.ledfw-manifest/1"
SUPPORTED_PLATFORMS = ("rp2", "esp32")

INFO_CODE = """\
import sys, json
try:
    import machine
    bid = ''.join('%02x' % b for b in machine.unique_id())
except Exception:
    bid = 'unknown'
print(json.dumps({'impl': sys.implementation.name, 'platform': sys.platform, 'id': bid}))
"""

HASH_CODE = """\
import hashlib, binascii, json
def _h(p):
    s = hashlib.sha256()
    b = bytearray(256)
    try:
        f = open(p, 'rb')
    except OSError:
        return 'missing'
    with f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            s.update(b[:n])
    return binascii.hexlify(s.digest()).decode()
try:
    _m = json.load(open('@MANIFEST@'))
    _files = {k: _h(k) for k in _m['files']}
except Exception:
    _m = None
    _files = {}
print(json.dumps({'manifest': _h('@MANIFEST@'), 'files': _files}))
""".replace("@MANIFEST@", MANIFEST)

REMOVE_MANIFEST_CODE = f"""\
import os
try:
    os.remove('{MANIFEST}')
except OSError:
    pass
"""


class FlashError(PacelightError):
    """Flashing failed (exit 1)."""


class BoardLink(Protocol):
    """The serial seam: what flashing needs from a board connection."""

    def exec(self, code: str) -> str: ...

    def write_file(self, name: str, data: bytes) -> None: ...

    def restart(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FirmwareImage:
    files: dict[str, bytes]  # name on the board → content
    version: str

    def hashes(self) -> dict[str, str]:
        return {n: hashlib.sha256(d).hexdigest() for n, d in self.files.items()}

    def manifest_bytes(self) -> bytes:
        doc = {"schema": MANIFEST_SCHEMA, "version": self.version, "files": self.hashes()}
        return json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"


def load_image(src: Path = LEDFW_DIR) -> FirmwareImage:
    files = {p.name: p.read_bytes() for p in sorted(src.glob("*.py"))}
    if "main.py" not in files:
        raise FlashError(f"firmware files not found in {src}")
    m = re.search(rb'^FW_VERSION = "([^"]+)"', files.get("pl_proto.py", b""), re.M)
    return FirmwareImage(files, m.group(1).decode() if m else "unknown")


def _json_line(text: str, what: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    raise FlashError(f"unexpected reply from the board while {what}: {text.strip()[:120]!r}")


def flash(link: BoardLink, image: FirmwareImage,
          platforms: tuple[str, ...] = SUPPORTED_PLATFORMS) -> dict[str, str]:
    """Copy, write the manifest last, verify by hashing on the board. Returns board info."""
    info = _json_line(link.exec(INFO_CODE), "identifying it")
    if info.get("impl") != "micropython" or info.get("platform") not in platforms:
        raise FlashError(f"wrong board: {info.get('impl')}/{info.get('platform')} "
                         f"(need MicroPython on {' or '.join(platforms)})")
    link.exec(REMOVE_MANIFEST_CODE)
    for name, data in image.files.items():
        log.info("writing %s (%d bytes)", name, len(data))
        link.write_file(name, data)
    manifest = image.manifest_bytes()
    link.write_file(MANIFEST, manifest)  # last: its presence means the copy completed
    got = _json_line(link.exec(HASH_CODE), "verifying")
    want = image.hashes()
    bad = sorted(n for n, h in want.items() if got.get("files", {}).get(n) != h)
    if got.get("manifest") != hashlib.sha256(manifest).hexdigest():
        bad.append(MANIFEST)
    if bad:
        raise FlashError(f"verification failed: {', '.join(bad)} differ on the board (flash again)")
    return {"board_id": str(info.get("id")), "platform": str(info.get("platform")), "version": image.version}


# ---- the real serial link (mpremote) ------------------------------------------------------------
def probe_port(port: str) -> None:
    """Open and close the port once to turn OS errors into clear one-line messages."""
    import serial

    try:
        serial.Serial(port, exclusive=True).close()
    except (serial.SerialException, OSError) as exc:
        code = getattr(exc, "errno", None)
        text = str(exc)
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in text:
            raise InputError(f"no device at {port} (is the LED controller plugged in?)") from None
        if code in (errno.EBUSY, errno.EAGAIN) or "lock" in text or "busy" in text.lower():
            raise FlashError(f"{port} is busy: another program has it open (stop the pacelight service "
                             "or serial monitor first)") from None
        if code == errno.EACCES or "Permission denied" in text:
            raise FlashError(f"no permission to open {port} (add the user to the dialout group)") from None
        raise FlashError(f"cannot open {port}: {text}") from None


class MpremoteLink:
    """A board on a serial port through mpremote's transport (raw REPL)."""

    def __init__(self, port: str) -> None:
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self._err = TransportError
        try:
            self.t = SerialTransport(port, baudrate=115200)
            self.t.enter_raw_repl(soft_reset=True)
        except TransportError as exc:
            raise FlashError(f"no MicroPython REPL on {port}: {exc} (wrong board?)") from None

    def exec(self, code: str) -> str:
        try:
            return self.t.exec(code).decode(errors="replace")
        except self._err as exc:
            raise FlashError(f"board error: {str(exc).strip().splitlines()[-1:]}") from None

    def write_file(self, name: str, data: bytes) -> None:
        try:
            self.t.fs_writefile(name, data)
        except self._err as exc:
            raise FlashError(f"writing {name} failed: {exc}") from None

    def restart(self) -> None:
        self.t.exit_raw_repl()
        self.t.serial.write(b"\x04")  # soft reset: runs the new main.py

    def close(self) -> None:
        self.t.close()


# ---- CLI ----------------------------------------------------------------------------------------
def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("flash", help="install the LED controller firmware on a board (verified)",
                              description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--port", required=True, help="serial port of the LED controller, e.g. /dev/ttyACM0")
    p.add_argument("--dry-run", action="store_true", help="list what would be copied (with sha256), touch nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    image = load_image()
    out = sys.stdout
    if args.dry_run:
        out.write(f"would flash LED controller firmware {image.version} to {args.port}:\n")
        for name, h in image.hashes().items():
            out.write(f"  {name:<16} {len(image.files[name]):>6} B  sha256 {h}\n")
        out.write(f"  {MANIFEST:<16} (written last, then every file is hashed on the board and compared)\n")
        return 0
    probe_port(args.port)
    link = MpremoteLink(args.port)
    try:
        info = flash(link, image)
        link.restart()
    finally:
        link.close()
    out.write(f"flashed {args.port}: board {info['board_id']} ({info['platform']}), firmware {info['version']}, "
              f"{len(image.files)} files verified\n")
    return 0
