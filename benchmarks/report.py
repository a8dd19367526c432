"""Write benchmark results into docs/benchmarks.md, one marked section per benchmark.

Each benchmark calls :func:`write_section` with its name and a Markdown body; the section is
replaced in place (atomically), stamped with the date and the machine it ran on, so several
benchmarks can record results independently.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\nRecorded by `make bench` (or the single benchmark named in each section). "
    "Each section states when and on which machine it ran.\n"
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem_gib = f", {kb / 1048576:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem_gib}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=DOC.parent.parent, timeout=5).stdout.strip() or "uncommitted"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_section(name: str, title: str, body: str, doc: Path = DOC) -> None:
    """Replace (or append) the section ``name`` in docs/benchmarks.md."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (f"<!-- bench:{name} -->\n## {title}\n\n_Run {stamp} at commit {_commit()} on {machine()}._\n\n"
             f"{body.strip()}\n<!-- /bench:{name} -->")
    text = doc.read_text() if doc.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=".benchmarks.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, doc)


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table; floats get 3 significant decimals."""
    def fmt(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(out)
