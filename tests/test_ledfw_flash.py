"""`pacelight flash`: dry run, copy + on-board verification (board = MicroPython unix port in a
directory, faked only at the serial seam), and the one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
from pathlib import Path

import pytest
import serial
from _ledfw_helpers import micropython_bin
from pacelight.cli import main as cli_main
from pacelight.commands import flash as fl


class UnixPortBoard:
    """A 'board' whose filesystem is a directory and whose Python is the real MicroPython unix port."""

    def __init__(self, root: Path, corrupt: str | None = None) -> None:
        self.root = root
        self.corrupt = corrupt
        self.writes: list[str] = []
        self.restarted = False

    def exec(self, code: str) -> str:
        res = subprocess.run([micropython_bin(), "-c", code], cwd=self.root, capture_output=True, text=True,
                             timeout=30)
        if res.returncode != 0:
            raise fl.FlashError(res.stdout + res.stderr)
        return res.stdout

    def write_file(self, name: str, data: bytes) -> None:
        if name == self.corrupt:
            data = data[:-1] + b"#"  # a transfer that went wrong silently
        (self.root / name).write_bytes(data)
        self.writes.append(name)

    def restart(self) -> None:
        self.restarted = True

    def close(self) -> None:
        pass


pytestmark = pytest.mark.skipif(micropython_bin() is None, reason="MicroPython unix port not installed")


def test_dry_run_lists_files_with_hashes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["flash", "--port", "/dev/does-not-exist", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for p in sorted(fl.LEDFW_DIR.glob("*.py")):
        assert p.name in out
        assert hashlib.sha256(p.read_bytes()).hexdigest() in out
    assert "firmware 1.0.0 to" in out and fl.MANIFEST in out


def test_copy_and_verify_on_board(tmp_path: Path) -> None:
    board = UnixPortBoard(tmp_path)
    (tmp_path / fl.MANIFEST).write_text("{}")  # a stale manifest from an older flash
    image = fl.load_image()
    info = fl.flash(board, image, platforms=("linux",))
    assert info["version"] == "1.0.0"
    assert board.writes[-1] == fl.MANIFEST  # manifest written last
    assert set(board.writes[:-1]) == set(image.files)
    manifest = json.loads((tmp_path / fl.MANIFEST).read_text())
    assert manifest["files"] == image.hashes()
    for name, data in image.files.items():
        assert (tmp_path / name).read_bytes() == data


def test_verification_failure_is_detected(tmp_path: Path) -> None:
    board = UnixPortBoard(tmp_path, corrupt="pl_state.py")
    with pytest.raises(fl.FlashError, match="verification failed: pl_state.py"):
        fl.flash(board, fl.load_image(), platforms=("linux",))


def test_wrong_board(tmp_path: Path) -> None:
    with pytest.raises(fl.FlashError, match="wrong board: micropython/linux"):
        fl.flash(UnixPortBoard(tmp_path), fl.load_image())  # the unix port is not an rp2/esp32
    assert not any(tmp_path.iterdir())  # nothing written


def test_missing_port_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["flash", "--port", "/dev/pacelight-no-such-port"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no device at /dev/pacelight-no-such-port" in err


def test_busy_port_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    master, slave = pty.openpty()
    try:
        holder = serial.Serial(os.ttyname(slave), exclusive=True)  # e.g. the pacelight service
        try:
            assert cli_main(["flash", "--port", os.ttyname(slave)]) == 1
        finally:
            holder.close()
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "is busy" in err
    finally:
        os.close(master)
        os.close(slave)
