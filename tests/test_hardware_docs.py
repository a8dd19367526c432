"""The hardware reference design and the IT guide: diagrams are valid, render, and links resolve.

* every SVG in ``hardware/`` is well-formed XML with an ``<svg>`` root, a viewBox, width,
  height and a ``<title>``;
* every file that ``hardware/*.md`` and ``docs/it-guide.md`` link to (or name as
  ``hardware/...``) exists;
* every ``pacelight ...`` command line in the IT guide uses only the subcommands and flags
  of CONTRACT.md section 5 (the guide is what IT staff copy and paste);
* each SVG renders in real headless Chromium to a PNG that is not blank (decoded here with
  zlib; no imaging dependency).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = ROOT / "hardware"
IT_GUIDE = ROOT / "docs" / "it-guide.md"
SVG_NS = "{http://www.w3.org/2000/svg}"
SVGS = sorted(HARDWARE.glob("*.svg"))
REQUIRED = ("README.md", "BOM.md", "enclosure.md", "audio-tap.svg", "led-controller.svg", "system-overview.svg")
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

# CONTRACT.md section 1 and 5: subcommand -> flags a script may rely on (plus --help everywhere).
CONTRACT_FLAGS: dict[str, set[str]] = {
    "analyze": {"--json", "--lang", "--config", "--segments"},
    "tone": {"--json"},
    "edge replay": {"--speed", "--json"},
    "aggregator": {"--broker", "--listen", "--db", "--http"},
    "send": {"--broker", "--device-id", "--bundle", "--outbox", "--timeout"},
    "calls list": {"--db", "--json"},
    "provision": {"--out"},
    "flash": {"--port", "--dry-run"},
}


def _markdown_docs() -> list[Path]:
    return sorted(HARDWARE.glob("*.md")) + [IT_GUIDE]


def _viewbox(root: ET.Element) -> tuple[float, float, float, float]:
    parts = re.split(r"[\s,]+", root.get("viewBox", "").strip())
    if len(parts) != 4:
        raise ValueError(f"viewBox must have 4 numbers, got {root.get('viewBox')!r}")
    x, y, w, h = (float(p) for p in parts)
    return x, y, w, h


def test_reference_design_files_present() -> None:
    missing = [name for name in REQUIRED if not (HARDWARE / name).is_file()]
    assert not missing, f"hardware/ is missing {missing}"
    assert IT_GUIDE.is_file()
    readme = (HARDWARE / "README.md").read_text(encoding="utf-8")
    for svg in SVGS:  # the index lists every diagram
        assert f"({svg.name})" in readme, f"hardware/README.md does not link {svg.name}"


@pytest.mark.parametrize("svg", SVGS, ids=[p.name for p in SVGS])
def test_svg_is_well_formed_with_title_and_size(svg: Path) -> None:
    root = ET.parse(svg).getroot()
    assert root.tag == f"{SVG_NS}svg"
    _, _, w, h = _viewbox(root)
    assert w > 0 and h > 0
    width, height = float(root.get("width", "0")), float(root.get("height", "0"))
    assert width > 0 and height > 0
    assert abs(width / height - w / h) < 0.01, "width/height aspect differs from the viewBox"
    title = root.find(f"{SVG_NS}title")
    assert title is not None and (title.text or "").strip(), "SVG needs a non-empty <title>"
    # Legibility: no text smaller than 11 px at the drawing's own size.
    style = "".join(el.text or "" for el in root.iter(f"{SVG_NS}style"))
    sizes = [float(s) for s in re.findall(r"font-size:\s*([\d.]+)px", style)]
    sizes += [float(el.get("font-size")) for el in root.iter() if el.get("font-size", "").replace(".", "").isdigit()]
    assert sizes and min(sizes) >= 11


_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HW_CODE = re.compile(r"`(hardware/[A-Za-z0-9_./-]+)`")


@pytest.mark.parametrize("doc", _markdown_docs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_referenced_files_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    targets: list[Path] = []
    for link in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link) or link.startswith("#"):
            continue  # URL or same-page anchor
        targets.append((doc.parent / link.split("#", 1)[0]).resolve())
    targets += [ROOT / rel for rel in _HW_CODE.findall(text)]
    if doc.name in ("README.md", "it-guide.md"):  # the index and the guide must link their material
        assert targets, f"{doc.name} references no files"
    missing = sorted({str(t.relative_to(ROOT)) if t.is_relative_to(ROOT) else str(t) for t in targets if not t.exists()})
    assert not missing, f"{doc.relative_to(ROOT)} references missing files: {missing}"


def _guide_command_lines() -> list[str]:
    """``pacelight ...`` lines inside fenced code blocks of the IT guide (comments stripped)."""
    lines: list[str] = []
    in_code = False
    for raw in IT_GUIDE.read_text(encoding="utf-8").splitlines():
        if raw.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            continue
        line = raw.split(" #", 1)[0].strip()
        line = re.sub(r"^(sudo\s+(-u\s+\S+\s+)?|\$\s+)", "", line)
        m = re.match(r"(?:\S*/bin/)?pacelight\s+(.*)$", line)  # the command itself, not a path or group
        if m:
            lines.append("pacelight " + m.group(1))
    return lines


CHANGELOG = (Path(__file__).resolve().parents[1] / "CHANGELOG.md").read_text(encoding="utf-8")


def test_it_guide_uses_the_contract_cli() -> None:
    text = IT_GUIDE.read_text(encoding="utf-8")
    for must in ("pacelight-edge.service", "/etc/pacelight/config.toml", "firmware/deploy/install-pi.sh"):
        assert must in text, f"IT guide should mention {must}"
    commands = _guide_command_lines()
    assert len(commands) >= 8, commands
    seen: set[str] = set()
    for cmd in commands:
        words = cmd.split()[1:]
        if words[0] in ("--version", "--help"):
            continue
        sub = " ".join(words[:2]) if " ".join(words[:2]) in CONTRACT_FLAGS else words[0]
        assert sub in CONTRACT_FLAGS, f"IT guide uses a subcommand outside CONTRACT.md section 5: {cmd!r}"
        flags = {w.split("=", 1)[0] for w in words if w.startswith("--")}
        unknown = flags - CONTRACT_FLAGS[sub] - {"--help"}
        # pacelight's additive extensions must be declared in CHANGELOG.md (CONTRACT: changes need a note).
        undeclared = {f for f in unknown if f"{sub} {f}" not in CHANGELOG and f not in CHANGELOG}
        assert not undeclared, f"{cmd!r} uses flags neither in CONTRACT.md nor in CHANGELOG.md: {sorted(undeclared)}"
        seen.add(sub)
    for needed in ("provision", "flash", "edge replay", "aggregator", "calls list"):
        assert needed in seen, f"IT guide never shows 'pacelight {needed}'"


def _decode_png(data: bytes) -> np.ndarray:
    """Minimal PNG decoder (8-bit RGB/RGBA, non-interlaced) -> uint8 array (h, w, channels)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG format depth={depth} type={ctype} interlace={interlace}")
    bpp = 3 if ctype == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        cur = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if ftype == 1:
            for i in range(bpp, stride):
                cur[i] = (cur[i] + cur[i - bpp]) & 0xFF
        elif ftype == 2:
            cur = bytearray((np.frombuffer(cur, np.uint8) + np.frombuffer(prev, np.uint8)).tobytes())
        elif ftype == 3:
            for i in range(stride):
                left = cur[i - bpp] if i >= bpp else 0
                cur[i] = (cur[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (cur[i] + pred) & 0xFF
        elif ftype != 0:
            raise ValueError(f"bad PNG filter {ftype}")
        out[y * stride : (y + 1) * stride] = cur
        prev = cur
    return np.frombuffer(bytes(out), np.uint8).reshape(height, width, bpp)


def test_png_decoder_roundtrip() -> None:
    """The tiny decoder against a PNG built here with every filter type."""
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    rows, prev = [], np.zeros(12, np.int32)
    for y in range(5):
        cur = img[y].reshape(-1).astype(np.int32)
        ftype = y % 5
        left = np.concatenate([np.zeros(3, np.int32), cur[:-3]])
        upleft = np.concatenate([np.zeros(3, np.int32), prev[:-3]])
        if ftype == 0:
            pred = np.zeros_like(cur)
        elif ftype == 1:
            pred = left
        elif ftype == 2:
            pred = prev
        elif ftype == 3:
            pred = (left + prev) >> 1
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        rows.append(bytes([ftype]) + ((cur - pred) & 0xFF).astype(np.uint8).tobytes())
        prev = cur

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 5, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
    assert np.array_equal(_decode_png(png), img)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian package 'chromium')")
@pytest.mark.parametrize("svg", SVGS, ids=[p.name for p in SVGS])
def test_svg_renders_in_headless_chromium(svg: Path, tmp_path: Path) -> None:
    _, _, w, h = _viewbox(ET.parse(svg).getroot())
    width, height = int(round(w)), int(round(h))
    png = tmp_path / (svg.stem + ".png")
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={png}", f"--window-size={width},{height}", svg.resolve().as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert png.is_file(), f"chromium wrote no screenshot (rc={proc.returncode}): {proc.stderr[-800:]}"
    img = _decode_png(png.read_bytes())
    assert img.shape[:2] == (height, width)
    rgb = img[..., :3].astype(np.int16)
    ink = (rgb < 235).any(axis=2)  # anything that is not (near-)white background
    assert rgb.std() > 10.0, "rendered diagram is (nearly) uniform"
    assert 0.02 < ink.mean() < 0.6, f"ink coverage {ink.mean():.3f} looks blank or solid"
    colours = np.unique(img[..., :3].reshape(-1, 3)[::7], axis=0)
    assert len(colours) >= 16, "expected a coloured, anti-aliased drawing"
    # Drawn over the whole canvas, not squeezed into a corner (viewBox and size agree).
    for band in (ink[: height // 3], ink[height // 3 : 2 * height // 3], ink[2 * height // 3 :]):
        assert band.mean() > 0.01
    for band in (ink[:, : width // 3], ink[:, width // 3 : 2 * width // 3], ink[:, 2 * width // 3 :]):
        assert band.mean() > 0.01
