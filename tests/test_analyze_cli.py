"""`pacelight analyze`: contract output, formats and every bad-input case (exit 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pacelight.summary import parse_summary

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE = DATA / "misc" / "pyannote_sample.flac"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pacelight.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    x, sr = sf.read(SAMPLE, dtype="float32")
    assert sr == 16000
    return x[int(16000 * 6.5) : 16000 * 18]  # the sample's speech starts at 6.69 s (RTTM)


def make_call(speech: np.ndarray) -> np.ndarray:
    """Two parties taking turns: agent gets the first half of the speech, customer the second."""
    n = len(speech)
    h = n // 2
    call = np.zeros((n + 16000, 2), dtype=np.float32)
    call[:h, 0] = speech[:h]
    call[h + 16000 : n + 16000, 1] = speech[h:]
    return call


def test_json_summary_follows_contract(tmp_path, speech):
    wav = tmp_path / "call.wav"
    sf.write(wav, make_call(speech), 16000, subtype="PCM_16")
    r = run_cli("analyze", str(wav), "--json", "--segments", "--no-tone")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    s = parse_summary(d)
    assert s.schema_ in ("pacelight.call-summary/1", "pacelight.call-summary/1.1")
    assert s.talk.agent_s > 3 and s.talk.customer_s > 3
    assert 0.2 < s.talk.agent_ratio < 0.8
    # Segments lie where each party's audio is, and the parties never overlap here.
    assert all(e <= 5.85 for _, e in s.segments.agent)
    assert all(st >= 6.7 for st, _ in s.segments.customer)
    assert s.talk.overlap_s == 0 and s.overtalk.events == 0
    total = s.talk.agent_s + s.talk.customer_s + s.talk.silence_s - s.talk.overlap_s
    assert total == pytest.approx(s.duration_s, abs=0.02)


def test_human_report(tmp_path, speech):
    wav = tmp_path / "call.wav"
    sf.write(wav, make_call(speech), 16000)
    r = run_cli("analyze", str(wav), "--no-tone")
    assert r.returncode == 0, r.stderr
    assert "talk ratio" in r.stdout and "pace" in r.stdout


@pytest.mark.parametrize("rate,subtype", [(8000, "PCM_16"), (48000, "PCM_16"), (44100, "FLOAT"), (16000, "PCM_24")])
def test_rates_and_sample_formats_agree(tmp_path, speech, rate, subtype):
    from scipy.signal import resample_poly

    call = make_call(speech)
    ref_wav = tmp_path / "ref.wav"
    sf.write(ref_wav, call, 16000)
    g = np.gcd(rate, 16000)
    other = resample_poly(call, rate // g, 16000 // g, axis=0).astype(np.float32)
    wav = tmp_path / f"call_{rate}.wav"
    sf.write(wav, np.clip(other, -1, 1), rate, subtype=subtype)
    a = json.loads(run_cli("analyze", str(ref_wav), "--json", "--no-tone").stdout)
    b = json.loads(run_cli("analyze", str(wav), "--json", "--no-tone").stdout)
    # 8 kHz loses the upper band; talk times must still agree closely.
    assert b["talk"]["agent_s"] == pytest.approx(a["talk"]["agent_s"], abs=0.4)
    assert b["talk"]["customer_s"] == pytest.approx(a["talk"]["customer_s"], abs=0.4)
    assert b["duration_s"] == pytest.approx(a["duration_s"], abs=0.01)


def test_mono_is_agent_alone(tmp_path, speech):
    wav = tmp_path / "mono.wav"
    sf.write(wav, speech, 16000)
    d = json.loads(run_cli("analyze", str(wav), "--json", "--no-tone").stdout)
    assert d["talk"]["customer_s"] == 0 and d["talk"]["agent_s"] > 5
    assert d["talk"]["agent_ratio"] == 1.0


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    cases = {}
    cases["missing"] = tmp_path / "nope.wav"
    p = tmp_path / "text.wav"
    p.write_text("this is not audio\n")
    cases["not a wav"] = p
    p = tmp_path / "three.wav"
    sf.write(p, np.zeros((1600, 3), dtype=np.float32), 16000)
    cases["3 channels"] = p
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros((0, 2), dtype=np.float32), 16000)
    cases["0 s"] = p
    p = tmp_path / "rate.wav"
    sf.write(p, np.zeros((4000, 2), dtype=np.float32), 4000)
    cases["4 kHz"] = p
    p = tmp_path / "fast.wav"
    sf.write(p, np.zeros((96000, 2), dtype=np.float32), 96000)
    cases["96 kHz"] = p
    good = tmp_path / "good.wav"
    sf.write(good, np.zeros((16000, 2), dtype=np.float32), 16000)
    p = tmp_path / "truncated.wav"
    p.write_bytes(good.read_bytes()[:30])
    cases["truncated header"] = p
    p = tmp_path / "cut.wav"
    p.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    cases["truncated data"] = p
    p = tmp_path / "flac.wav"
    sf.write(p, np.zeros((16000, 2), dtype=np.float32), 16000, format="FLAC")
    cases["flac named wav"] = p
    cases["directory"] = tmp_path
    return cases


def test_bad_input_exits_2_with_one_line(tmp_path):
    for name, path in _bad_inputs(tmp_path).items():
        for extra in ([], ["--json"]):
            r = run_cli("analyze", str(path), *extra)
            assert r.returncode == 2, (name, r.returncode, r.stderr)
            assert r.stdout == "", name
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in r.stderr, (name, r.stderr)
            assert lines[0].startswith("pacelight analyze: error:"), lines[0]


def test_bad_config_is_rejected(tmp_path, speech):
    wav = tmp_path / "call.wav"
    sf.write(wav, make_call(speech), 16000)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[pipeline.activity]\nvad_mod = 3\n")
    r = run_cli("analyze", str(wav), "--config", str(cfg))
    assert r.returncode == 2 and "unknown key 'vad_mod'" in r.stderr
