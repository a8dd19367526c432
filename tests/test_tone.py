"""Tone: features, the int8 TFLite model with both runtimes, the streaming tracker and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pacelight.cli import main as cli_main
from pacelight.frames import FRAME_SAMPLES, SAMPLE_RATE_HZ
from pacelight.tone.features import (
    HISTORY_SAMPLES,
    N_MELS,
    POWER_FLOOR,
    WINDOW_FRAMES,
    logmel,
    logmel_frames,
    normalize_window,
)
from pacelight.tone.model import ToneModel, default_model_path
from pacelight.tone.tracker import ToneSettings, ToneTracker

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def _voice(seconds: float, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A crude voiced signal: harmonic series with a syllable-rate envelope and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    f = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f) / SAMPLE_RATE_HZ
    x = sum(np.sin(k * phase) / k for k in range(1, 20))
    env = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t)) ** 2
    return (0.1 * x * env + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> ToneModel:
    return ToneModel()


def test_logmel_frames_any_subset_equals_whole_signal():
    x = _voice(2.37, seed=1)
    x[1234] = np.nan
    x[5000] = np.inf
    batch = logmel(x)
    assert batch.shape == (len(x) // FRAME_SAMPLES, N_MELS) and np.isfinite(batch).all()
    padded = np.concatenate([np.zeros(HISTORY_SAMPLES, np.float32), x[: len(batch) * FRAME_SAMPLES]])
    rng = np.random.default_rng(3)
    for _ in range(5):
        sel = np.sort(rng.choice(len(batch), size=int(rng.integers(1, 60)), replace=False))
        np.testing.assert_allclose(logmel_frames(padded, sel), batch[sel], rtol=0, atol=1e-4)
    # a frame's row depends only on its own 25 ms: a later cut of the signal gives the same rows
    cut = padded[100 * FRAME_SAMPLES:]
    np.testing.assert_allclose(logmel_frames(cut), batch[100:], rtol=0, atol=1e-4)
    assert logmel_frames(padded[:HISTORY_SAMPLES + 100]).shape == (0, N_MELS)


class _Spy:
    """Wraps the real model and records every window the tracker feeds it."""

    def __init__(self, model: ToneModel) -> None:
        self.model, self.windows = model, []

    def name(self) -> str:
        return self.model.name()

    def predict_window(self, window):
        self.windows.append(np.array(window))
        return self.model.predict_window(window)



def test_logmel_non_finite_samples_count_as_clipped_values():
    """NaN/±inf samples (detected on the output rows) give exactly the rows of the cleaned signal."""
    x = _voice(1.5, seed=4)
    bad = x.copy()
    bad[[100, 4000, 9000, 9001]] = [np.nan, np.inf, -np.inf, np.nan]
    want = logmel(np.nan_to_num(bad, nan=0.0, posinf=1.0, neginf=-1.0))
    got = logmel(bad)
    assert np.isfinite(got).all()
    np.testing.assert_array_equal(got, want)
    # rows without bad samples are those of the clean signal
    same = np.ones(len(got), bool)
    for i in (100, 4000, 9000, 9001):
        same[i // FRAME_SAMPLES: (i + HISTORY_SAMPLES) // FRAME_SAMPLES + 1] = False
    np.testing.assert_array_equal(got[same], logmel(x)[same])

@pytest.mark.parametrize("mask_inactive", [True, False])
def test_tracker_inputs_equal_training_features_any_blocks(model, mask_inactive):
    """Runtime (lazy, ring-buffered) features == the training path (logmel → normalize_window) on the
    same frames, for any blocking, across buffer compactions (a 10 s signal, pauses, short turns)."""
    x = np.concatenate([_voice(2.6, f0=120), np.zeros(27000, np.float32), _voice(1.4, f0=180, seed=5),
                        np.zeros(4000, np.float32), _voice(4.3, f0=220, seed=2)])
    n = len(x) // FRAME_SAMPLES
    frames = x[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)
    active = frames.std(axis=1) > 0.01
    settings = ToneSettings(mask_inactive=mask_inactive)
    lm = logmel(x)
    silence = np.float32(10.0 * np.log10(POWER_FLOOR))
    expected, ends = [], []
    for end in range(100, n + 1, 100):
        a = active[max(0, end - 200):end]
        if a.sum() >= 60:
            patch = lm[max(0, end - 200):end]
            expected.append(normalize_window(np.where(a[:, None], patch, silence) if mask_inactive else patch))
            ends.append(end / 100)
    assert len(expected) >= 6 and len(expected) < n // 100  # some windows are skipped as unvoiced
    rng = np.random.default_rng(7)
    for blocks in ([n], [5] * (n // 5 + 1), list(rng.integers(0, 70, 400))):
        spy, i, ups = _Spy(model), 0, []
        tr = ToneTracker(spy, settings)  # type: ignore[arg-type]
        for b in blocks:
            ups += tr.process(frames[i:i + b], active[i:i + b])
            i += b
        if i < n:
            ups += tr.process(frames[i:], active[i:])
        assert [u.t_s for u in ups] == ends
        assert len(spy.windows) == len(expected)
        for got, want in zip(spy.windows, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)


def test_normalize_window_shapes_and_silence():
    assert normalize_window(np.zeros((0, N_MELS))).shape == (WINDOW_FRAMES, N_MELS)
    z = normalize_window(logmel(np.zeros(16000, np.float32)))
    assert z.shape == (WINDOW_FRAMES, N_MELS) and np.isfinite(z).all()
    long = normalize_window(logmel(_voice(3.5)))
    assert long.shape == (WINDOW_FRAMES, N_MELS)


def test_clip_inputs_trim_leading_and_trailing_silence():
    from pacelight.tone.features import clip_model_inputs

    v = _voice(1.8, seed=4)
    padded = np.concatenate([np.zeros(32000, np.float32), v, np.zeros(40000, np.float32)])
    x0, w0 = clip_model_inputs(v)
    x1, w1 = clip_model_inputs(padded)
    assert len(w0) == len(w1) == 1
    assert w1[0][0] >= 185 and w1[0][1] <= 200 + 180 + 20  # window sits on the speech, in clip frames
    speech_frames = (x1[0].max(axis=1) > x1[0].min() + 1.0).mean()
    assert speech_frames > 0.75  # the window is speech, not the 2 s of padding


@pytest.mark.parametrize("runtime", ["tflite_runtime", "ai_edge_litert"])
def test_model_loads_with_both_runtimes_and_applies_int8_params(runtime, model):
    m = ToneModel(model.path, runtime=runtime)
    assert m.runtime == runtime
    assert m.input_dtype == np.int8 and m.output_dtype == np.int8
    assert m.input_scale > 0 and m.output_scale > 0
    w = normalize_window(logmel(_voice(2.0)))
    q = m.quantize_input(w)
    assert q.dtype == np.int8
    # quantisation round-trips within half a step (where not saturated)
    back = (q.astype(np.float32) - m.input_zero_point) * m.input_scale
    inside = (q > -128) & (q < 127)
    assert np.max(np.abs(back - w)[inside]) <= m.input_scale / 2 + 1e-6
    # dequantised output: raw int8 code → probability
    raw = np.array([-128, 127, 0], np.int8)
    np.testing.assert_allclose(m.dequantize_output(raw), (raw.astype(np.float32) - m.output_zero_point) * m.output_scale)
    # the inference path's reused-buffer quantisation is the same; NaN counts as 0, ±inf saturates
    bad = w.copy()
    bad[0, :3] = [np.nan, np.inf, -np.inf]
    for x in (w, bad):
        want = m.quantize_input(np.nan_to_num(x, nan=0.0, posinf=1e6, neginf=-1e6)).reshape(-1)
        np.testing.assert_array_equal(m._quantize_into_input(x).reshape(-1), want)
    assert np.isfinite(m.predict_probs(bad)).all()
    p = m.predict_probs(w)
    assert p.shape == (3,) and abs(float(p.sum()) - 1) < 1e-5 and (p >= 0).all()
    # deterministic, and the same answer from both runtimes
    np.testing.assert_array_equal(m.predict_probs(w), p)
    np.testing.assert_allclose(model.predict_probs(w), p, atol=1e-6)
    # the version the runtime reports is the one the shipped files were built as (make model writes it)
    built = json.loads((Path(__file__).resolve().parents[1] / "models" / "tone-metrics.json").read_text())
    assert m.name() == f"{m.path.stem} {built['model_version']}" and m.name().startswith("tone-")


def test_runtime_preference_and_override(monkeypatch, model):
    # both installed (dev): ai_edge_litert (int8 via XNNPACK) first; the env var selects the Pi's one
    monkeypatch.delenv("PACELIGHT_TFLITE_RUNTIME", raising=False)
    assert ToneModel(model.path).runtime == "ai_edge_litert"
    monkeypatch.setenv("PACELIGHT_TFLITE_RUNTIME", "tflite_runtime")
    assert ToneModel(model.path).runtime == "tflite_runtime"
    monkeypatch.setenv("PACELIGHT_TFLITE_RUNTIME", "ai_edge_litert")
    assert ToneModel(model.path).runtime == "ai_edge_litert"


def test_default_model_is_shipped_and_small(monkeypatch):
    monkeypatch.delenv("PACELIGHT_TONE_MODEL", raising=False)
    p = default_model_path()
    assert p.parent == REPO / "models" and p.suffix == ".tflite"
    assert p.stat().st_size <= 250 * 1024


def test_tracker_block_size_independent_and_party_tone(model):
    x = np.concatenate([_voice(3.2, f0=120), np.zeros(8000, np.float32), _voice(2.5, f0=220, seed=2)])
    n = len(x) // FRAME_SAMPLES
    frames = x[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)
    active = frames.std(axis=1) > 0.01
    results = []
    for blocks in ([n], [5] * (n // 5) + [n % 5], list(np.random.default_rng(0).integers(1, 40, 100))):
        tr, ups, i = ToneTracker(model, ToneSettings(), party="customer"), [], 0
        for b in blocks:
            ups += tr.process(frames[i:i + b], active[i:i + b])
            i += b
            if i >= n:
                break
        if i < n:
            ups += tr.process(frames[i:], active[i:])
        results.append((ups, tr.party_tone()))
    ups0, tone0 = results[0]
    assert len(ups0) >= 4
    assert [u.t_s for u in ups0] == [float(k) for k in range(1, len(ups0) + 1)] or all(
        abs(u.t_s - round(u.t_s)) < 1e-9 for u in ups0)
    for ups, tone in results[1:]:
        assert [(u.t_s, u.label) for u in ups] == [(u.t_s, u.label) for u in ups0]
        np.testing.assert_allclose([u.score for u in ups], [u.score for u in ups0], atol=1e-6)
        assert tone == tone0
    assert all(u.party == "customer" and 0 <= u.score <= 1 for u in ups0)
    assert abs(tone0.low + tone0.neutral + tone0.high - 1) < 1e-9 and 0 <= tone0.mean_score <= 1


def test_tracker_silence_clipping_and_short_input(model):
    tr = ToneTracker(model)
    z = np.zeros((500, FRAME_SAMPLES), np.float32)
    assert tr.process(z, np.zeros(500, bool)) == []
    assert tr.process(z[:0], np.zeros(0, bool)) == []
    assert tr.party_tone().low is None and tr.party_tone().mean_score is None
    # digital silence flagged active (a VAD mistake) and full-scale clipping: finite, valid output
    assert all(0 <= u.score <= 1 for u in tr.process(z, np.ones(500, bool)))
    clipped = np.clip(_voice(3.0) * 50, -1, 1).reshape(-1, FRAME_SAMPLES)
    ups = tr.process(clipped, np.ones(len(clipped), bool))
    assert ups and all(0 <= u.score <= 1 and u.label in ("low", "neutral", "high") for u in ups)
    short = ToneTracker(model)
    assert short.process(_voice(0.3).reshape(-1, FRAME_SAMPLES), np.ones(30, bool)) == []
    assert short.party_tone() == short.party_tone().empty()
    with pytest.raises(ValueError):
        short.process(np.zeros((3, 100), np.float32), np.ones(3, bool))


def _real_clip() -> Path | None:
    p = DATA / "emodb" / "03a01Wa.flac"
    return p if p.is_file() else None


def test_cli_json_contract_and_rates(tmp_path, capsys):
    src = _real_clip()
    x = sf.read(src, dtype="float32")[0] if src else _voice(2.5)
    from scipy.signal import resample_poly

    wav8 = tmp_path / "clip8k.wav"
    sf.write(wav8, resample_poly(x, 1, 2), 8000, subtype="PCM_16")
    stereo = tmp_path / "stereo48k.wav"
    y = resample_poly(x, 3, 1)
    sf.write(stereo, np.stack([y, np.zeros_like(y)], axis=1), 48000, subtype="FLOAT")
    for f in (wav8, stereo):
        assert cli_main(["tone", str(f), "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert set(out) == {"arousal", "score", "windows"}
        assert out["arousal"] in ("low", "neutral", "high") and 0 <= out["score"] <= 1
        assert out["windows"] and all(0 <= w["score"] <= 1 for w in out["windows"])
    assert cli_main(["tone", str(wav8)]) == 0
    assert "arousal" in capsys.readouterr().out


def test_cli_bad_input_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(100, np.float32), 16000)
    three = tmp_path / "three.wav"
    sf.write(three, np.zeros((16000, 3), np.float32), 16000)
    lowrate = tmp_path / "low.wav"
    sf.write(lowrate, np.zeros(16000, np.float32), 4000)
    for f in (tmp_path / "missing.wav", bad, short, three, lowrate):
        assert cli_main(["tone", str(f), "--json"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("pacelight tone: error:") and "\n" not in err


def test_runtime_never_imports_tensorflow():
    code = ("import sys, numpy as np\n"
            "from pacelight.tone.tracker import ToneTracker\n"
            "import pacelight.commands.tone, pacelight.tone.features, pacelight.tone.model\n"
            "t = ToneTracker(party='agent')\n"
            "t.process(np.zeros((300, 160), np.float32) + 0.01, np.ones(300, bool))\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'pacelight_train')]\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in (REPO / "firmware" / "pacelight").rglob("*.py"):
        text = f.read_text()
        assert "import tensorflow" not in text and "from tensorflow" not in text, f
