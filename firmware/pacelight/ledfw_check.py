"""Static checks of the LED controller firmware (``make lint``: ``python -m pacelight.ledfw_check``).

1. Type-check ``ledfw/*.py`` with mypy against the MicroPython stubs of each supported board
   (``micropython-rp2-rpi-pico-stubs``, ``micropython-esp32-stubs``, from the dev extra) using the
   stubs' own MicroPython stdlib as typeshed, so CPython-only APIs are errors.
   Both stub distributions install their ``machine.pyi`` etc. into the same site-packages (the
   last one wins), so each is unpacked once into its own directory
   ``<venv>/share/pacelight-stubs/<board>-<version>`` with ``pip install --no-deps --target``
   (same pinned version as installed; pip's cache makes this offline after the first time).
   Errors inside the stubs themselves are not ours and are ignored; errors in the firmware fail.
2. Compile every firmware file with mpy-cross (syntax and MicroPython-specific compile errors).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LEDFW = Path(__file__).resolve().parent / "ledfw"
BOARDS: tuple[tuple[str, str], ...] = (
    ("rp2", "micropython-rp2-rpi-pico-stubs"),
    ("esp32", "micropython-esp32-stubs"),
)
STDLIB_STUBS = "micropython-stdlib-stubs"


def firmware_files() -> list[Path]:
    return sorted(LEDFW.glob("*.py"))


def _say(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def _version(dist: str) -> str | None:
    for name in (dist, dist.replace("-", "_"), dist.replace("rpi-pico", "rpi_pico")):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            continue
    return None


def stub_dir(board: str, dist: str) -> Path:
    """Per-board stub directory (created once)."""
    ver = _version(dist)
    std_ver = _version(STDLIB_STUBS)
    if ver is None or std_ver is None:
        raise SystemExit(f"ledfw_check: {dist} / {STDLIB_STUBS} not installed (install the dev extra: make setup)")
    base = Path(sys.prefix) / "share" / "pacelight-stubs"
    target = base / f"{board}-{ver}-{std_ver}"
    if (target / "machine.pyi").exists():
        return target
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".{board}-"))
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
           "--target", str(tmp), f"{dist}=={ver}", f"{STDLIB_STUBS}=={std_ver}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit(f"ledfw_check: could not unpack {dist}=={ver}: {res.stderr.strip().splitlines()[-1:]}")
    try:
        os.replace(tmp, target)
    except OSError:  # another run won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def mypy_board(board: str, dist: str) -> list[str]:
    stubs = stub_dir(board, dist)
    files = [p.name for p in firmware_files()]
    env = dict(os.environ, MYPYPATH=str(stubs))
    cmd = [sys.executable, "-m", "mypy", "--custom-typeshed-dir", str(stubs), "--no-incremental",
           "--explicit-package-bases", "--no-site-packages", "--follow-imports=silent",
           "--check-untyped-defs", "--warn-unused-ignores", "--no-error-summary", *files]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=LEDFW, env=env, timeout=300)
    ours = tuple(f"{f}:" for f in files)
    errors = [ln for ln in res.stdout.splitlines() if ln.startswith(ours) and ": error:" in ln]
    if res.returncode not in (0, 1):
        errors.append(f"mypy failed to run: {res.stderr.strip()[-300:]}")
    return errors


def mpy_cross_all() -> list[str]:
    exe = Path(sys.executable).with_name("mpy-cross")
    cmd0 = [str(exe)] if exe.exists() else [sys.executable, "-m", "mpy_cross"]
    errors = []
    with tempfile.TemporaryDirectory() as out:
        for f in firmware_files():
            res = subprocess.run([*cmd0, "-o", str(Path(out) / (f.stem + ".mpy")), f.name],
                                 capture_output=True, text=True, cwd=LEDFW, timeout=60)
            if res.returncode != 0:
                errors.append(f"mpy-cross {f.name}: {(res.stderr or res.stdout).strip()}")
    return errors


def main(argv: list[str] | None = None) -> int:
    failed = False
    for board, dist in BOARDS:
        errs = mypy_board(board, dist)
        _say(f"ledfw_check: mypy ({board} stubs): {'OK' if not errs else f'{len(errs)} error(s)'}")
        for e in errs:
            _say("  " + e)
        failed |= bool(errs)
    errs = mpy_cross_all()
    _say(f"ledfw_check: mpy-cross {len(firmware_files())} files: {'OK' if not errs else 'FAILED'}")
    for e in errs:
        _say("  " + e)
    failed |= bool(errs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
