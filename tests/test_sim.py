"""The call simulator: truth consistency, determinism, WAV format, CLI (real espeak-ng)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from pacelight.cli import main as cli_main
from pacelight.frames import FRAME_SAMPLES
from pacelight.sim.call import CallSpec, RateChange, simulate_call, write_calls
from pacelight.sim.clips import data_dir


@pytest.fixture(scope="module")
def calls() -> list:
    specs = [CallSpec(duration_s=60.0, langs=(lang,), interruption_prob=0.3, overlap_prob=0.2, hold_prob=1.0)
             for lang in ("en", "ru", "cmn")]
    return [simulate_call(s, seed) for seed, s in enumerate(specs, start=11)]


def _inside(a: float, b: float, segs: list) -> bool:
    return any(s - 1e-6 <= a and b <= e + 1e-6 for s, e in segs)


def test_truth_consistency(calls) -> None:
    for call in calls:
        t = call.truth
        dur = t["duration_s"]
        for party in ("agent", "customer"):
            segs = t["segments"][party]
            assert segs, party
            flat = [x for s in segs for x in s]
            assert flat == sorted(flat) and all(e > s for s, e in segs)
            assert all(b[0] - a[1] >= 0.2 - 1e-6 for a, b in zip(segs, segs[1:], strict=False))  # bridged
            assert 0 <= flat[0] and flat[-1] <= dur
            assert t["talk"][f"{party}_s"] == pytest.approx(sum(e - s for s, e in segs), abs=0.011)
        assert t["talk"]["silence_s"] >= 0
        for o in t["overlaps"]:
            assert o["kind"] in ("interruption", "backchannel", "overlap") and o["by"] in ("agent", "customer")
            assert _inside(o["start"], o["end"], t["segments"]["agent"])
            assert _inside(o["start"], o["end"], t["segments"]["customer"])
        assert t["talk"]["overlap_s"] == pytest.approx(sum(o["end"] - o["start"] for o in t["overlaps"]), abs=0.011)
        bcs = [u for u in t["utterances"] if u["kind"] == "backchannel"]
        assert all(u["end"] - u["start"] <= 1.0 for u in bcs)
        assert t["overtalk"]["events"] == len(t["overlaps"])
        assert all(5.0 <= e - s <= 20.0 for s, e in t["holds"])
        for party in ("agent", "customer"):  # one party never talks over itself
            us = sorted((u["start"], u["end"]) for u in t["utterances"] if u["party"] == party)
            assert all(b[0] >= a[1] for a, b in zip(us, us[1:], strict=False))
        for s, e in t["holds"]:  # nobody talks on hold
            for party in ("agent", "customer"):
                assert not any(a < e and s < b for a, b in t["segments"][party])


def test_segments_cover_the_clean_speech(calls) -> None:
    for call in calls:
        for ch, party in enumerate(("agent", "customer")):
            x = call.clean[:, ch].astype(np.float64)
            mask = np.zeros(x.size, bool)
            for s, e in call.truth["segments"][party]:
                mask[int(round(s * 16000)):int(round(e * 16000))] = True
            assert np.sum(x[mask] ** 2) / np.sum(x**2) > 0.995


def test_dialogue_events_present(calls) -> None:
    kinds = {u["kind"] for c in calls for u in c.truth["utterances"]}
    assert {"turn", "backchannel", "interruption"} <= kinds
    assert any(c.truth["holds"] for c in calls)
    langs = {c.truth["languages"][0] for c in calls}
    assert langs == {"en", "ru", "cmn"}
    for c in calls:
        cut = [u for u in c.truth["utterances"] if u.get("cut")]
        for u in cut:  # the interrupted party is cut 0.3–1.8 s after the intruder starts
            intr = [v for v in c.truth["utterances"] if v["kind"] == "interruption" and v["party"] != u["party"]
                    and u["start"] < v["start"] < u["end"]]
            assert intr and 0.29 <= u["end"] - intr[0]["start"] <= 1.81


def test_levels_and_no_clipping(calls) -> None:
    for call in calls:
        assert call.audio.dtype == np.float32 and call.audio.shape[1] == 2
        assert np.abs(call.audio).max() <= 0.99
        for party, lvl in call.truth["effects"]["final_level_dbfs"].items():
            assert -36.0 <= lvl <= -11.0, (party, lvl)
        # the agent mic carries noise, babble and leak: never digital silence
        assert np.abs(call.audio[: 16000 * 5, 0]).max() > 0


def test_pace_truth_and_rate_change() -> None:
    spec = CallSpec(duration_s=60.0, langs=("en",), sources=("tts",), effects=False,
                    agent_speed_wpm=(180, 180), speed_jitter_wpm=0, hold_prob=0.0,
                    rate_change=RateChange("agent", 30.0, 1.15))
    t = simulate_call(spec, 3).truth
    rc = t["rate_change"]
    assert rc["mean_speed_wpm_before"] == 180 and rc["mean_speed_wpm_after"] == 207
    assert rc["syl_s_after"] > rc["syl_s_before"] * 1.05
    assert 2.0 < t["pace"]["agent_syl_s"] < 8.0


def test_determinism_and_wav_format(tmp_path) -> None:
    kw = {"duration_s": 15.0, "rate_hz": 44100}
    a = write_calls(tmp_path / "a", 2, 9, **kw)
    b = write_calls(tmp_path / "b", 2, 9, **kw)
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
        assert pa.with_suffix(".truth.json").read_bytes() == pb.with_suffix(".truth.json").read_bytes()
    assert a[0].read_bytes() != a[1].read_bytes()
    info = sf.info(str(a[0]))
    assert (info.channels, info.samplerate, info.subtype, info.frames) == (2, 44100, "PCM_16", 15 * 44100)
    truth = json.loads(a[0].with_suffix(".truth.json").read_text())
    assert truth["sample_rate_hz"] == 44100 and truth["duration_s"] == 15.0 and truth["call_id"] == "sim-9-000"


@pytest.mark.skipif(not (data_dir() / "manifest.csv").exists(), reason="shared data not present")
def test_clips_filtered_by_arousal() -> None:
    with (data_dir() / "manifest.csv").open() as fh:
        arousal = {r["path"]: r["arousal"] for r in csv.DictReader(fh)}
    spec = CallSpec(duration_s=40.0, langs=("en",), clip_prob=1.0, clips_call_prob=1.0, clip_arousal=("high",), clip_silero=False,
                    effects=False)
    t = simulate_call(spec, 5).truth
    clips = [p for u in t["utterances"] if "clip" in u for p in u["clip"].split()]
    assert clips and all(arousal[p] == "high" for p in clips)


def test_cli(tmp_path, capsys) -> None:
    out = tmp_path / "calls"
    rc = cli_main(["simulate", "--out", str(out), "--n", "1", "--seed", "4", "--minutes", "0.25",
                   "--rate", "8000", "--langs", "ru", "--effects", "clean", "--sources", "tts"])
    assert rc == 0
    x, rate = sf.read(str(out / "call-000.wav"))
    assert rate == 8000 and x.shape == (15 * 8000, 2)
    assert "1/1 calls" in capsys.readouterr().err
    assert cli_main(["simulate", "--out", str(out), "--langs", "xx"]) == 2
    assert cli_main(["simulate", "--out", str(out), "--n", "0"]) == 2
    assert FRAME_SAMPLES == 160
