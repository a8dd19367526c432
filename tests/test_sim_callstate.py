"""Call-state simulation: hold music (incl. sung), IVR, DTMF, ringback/busy, mute — with truth."""

from __future__ import annotations

import numpy as np
import pytest
from pacelight.frames import SAMPLE_RATE_HZ as SR
from pacelight.sim import music
from pacelight.sim.call import CallSpec, simulate_call


@pytest.fixture(scope="module")
def calls() -> list:
    return [simulate_call(CallSpec(duration_s=75.0, langs=(lang,), call_state=True), seed)
            for seed, lang in ((21, "en"), (22, "ru"))]


def _overlaps(a: list, b: list) -> float:
    return sum(max(0.0, min(x[1], y[1]) - max(x[0], y[0])) for x in a for y in b)


def test_classes_tile_the_call_and_agree_with_segments(calls) -> None:
    for call in calls:
        t = call.truth
        for party in ("agent", "customer"):
            runs = t["classes"][party]
            assert runs[0][0] == 0.0 and runs[-1][1] == pytest.approx(t["duration_s"], abs=0.011)
            assert all(a[1] == b[0] and a[2] != b[2] for a, b in zip(runs, runs[1:], strict=False))  # transitions
            assert {r[2] for r in runs} <= {"speech", "music", "tone", "silence", "ivr"}
            speech = [r[:2] for r in runs if r[2] == "speech"]
            assert sum(e - s for s, e in speech) == pytest.approx(t["talk"][f"{party}_s"], abs=0.02)
        cust = t["classes"]["customer"]
        non_talk = [r[:2] for r in cust if r[2] in ("music", "tone", "ivr")]
        assert non_talk and _overlaps(non_talk, t["segments"]["customer"]) == 0.0  # never customer talk
        cs = t["call_state"]
        music_s = sum(e - s for s, e, k in cust if k == "music")
        assert cs["hold_s"] == pytest.approx(music_s, abs=0.02)
        assert all(e - s >= 5.0 for s, e in t["holds"])
        assert cs["ivr_s"] == pytest.approx(sum(e - s for s, e, k in cust if k == "ivr"), abs=0.02)
        assert [[h["start"], h["end"]] for h in t["call_state_events"]["hold_music"]] == t["holds"]
        ev = t["call_state_events"]
        assert all(0.039 <= e - s <= 0.101 for s, e, _d in ev["dtmf"]["tones"])
        assert ev["busy"]["end"] <= t["duration_s"]


def test_some_call_has_hold_music(calls) -> None:
    assert any(c.truth["call_state"]["hold_s"] >= 5.0 for c in calls)


def test_mute_is_silent_on_the_agent_channel(calls) -> None:
    muted = [c for c in calls if c.truth["call_state"]["mute_s"] > 0]
    assert muted
    for call in muted:
        m = call.truth["call_state_events"]["mute"]
        x = call.audio[int(m["start"] * SR) + 10:int(m["end"] * SR) - 10, 0]
        assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) < 10 ** (-55 / 20)
        assert _overlaps([[m["start"], m["end"]]], call.truth["segments"]["agent"]) == 0.0


def test_hold_music_is_on_the_receive_path(calls) -> None:
    for call in calls:
        for s, e in call.truth["holds"]:
            hold = call.audio[int(s * SR) + SR:int(e * SR) - SR, 1].astype(np.float64)
            assert 10 * np.log10(np.mean(hold**2)) > -50


def test_sung_music_has_vibrato_voice_in_formant_band() -> None:
    rng = np.random.default_rng(1)
    sung, desc = music.hold_music(6.0, rng, "sung")
    pad, _ = music.hold_music(6.0, np.random.default_rng(1), "pad")
    assert desc["style"] == "sung" and 4.0 <= desc["vibrato_hz"] <= 7.0
    assert sung.dtype == np.float32 and np.sqrt(np.mean(sung**2)) == pytest.approx(1.0, rel=1e-3)

    def band_share(x: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size, 1 / SR)
        return float(spec[(f > 700) & (f < 3000)].sum() / spec.sum())

    assert band_share(sung) > band_share(pad)  # the sung vowel adds formant energy


def test_dtmf_and_cadences() -> None:
    sig, marks = music.dtmf("19#", np.random.default_rng(0))
    s, e, d = marks[0]
    spec = np.abs(np.fft.rfft(sig[s:e], 8192))
    f = np.fft.rfftfreq(8192, 1 / SR)
    peaks = sorted(f[np.argsort(spec)[-2:]])
    assert abs(peaks[0] - 697) < 15 and abs(peaks[1] - 1209) < 15 and d == "1"
    ring, rmarks = music.cadence_tone((440.0, 480.0), 2.0, 4.0, 12.0)
    assert [(a / SR, b / SR) for a, b in rmarks] == [(0.0, 2.0), (6.0, 8.0)]
    assert np.abs(ring[int(3 * SR):int(5 * SR)]).max() == 0.0
    _busy, bmarks = music.cadence_tone((480.0, 620.0), 0.5, 0.5, 3.0)
    assert len(bmarks) == 3


def _call_state_spans(truth: dict) -> dict[str, list[tuple[float, float]]]:
    ev = truth["call_state_events"]
    cust = [(h["start"], h["end"]) for h in ev["hold_music"]]
    cust += [(ev[k]["start"], ev[k]["end"]) for k in ("ringback", "ivr", "busy") if k in ev]
    agent = [(s, e) for s, e, _d in ev["dtmf"]["tones"]] if "dtmf" in ev else []
    if "mute" in ev:
        agent.append((ev["mute"]["start"], ev["mute"]["end"]))
    return {"agent": agent, "customer": cust}


def test_call_state_sounds_are_added_to_the_same_call(calls) -> None:
    """Call-state content draws from its own stream: without its sounds (the twin) the call has the
    same clean tracks, truth, levels, noise and babble, and the same audio outside the call-state spans."""
    from dataclasses import replace

    for seed, call in zip((21, 22), calls, strict=True):
        spec = CallSpec(duration_s=75.0, langs=(call.truth["languages"][0],), call_state=True)
        twin = simulate_call(replace(spec, call_state_sounds=False), seed)
        assert np.array_equal(call.clean, twin.clean)
        for key in ("segments", "overlaps", "talk", "overtalk", "utterances", "holds"):
            assert call.truth[key] == twin.truth[key], key
        fx, fx_twin = call.truth["effects"], twin.truth["effects"]
        for key in ("target_level_dbfs", "customer_noise", "agent_noise", "line_echo", "mic_leak", "babble"):
            assert fx[key] == fx_twin[key], key
        assert twin.truth["call_state_sounds"] is False and "call_state" not in twin.truth
        spans = _call_state_spans(call.truth)
        for ch, party in enumerate(("agent", "customer")):
            keep = np.ones(call.audio.shape[0], bool)
            for s, e in spans[party]:
                keep[max(0, int((s - 0.1) * SR)):int((e + 0.2) * SR)] = False
            assert keep.mean() > 0.4
            ratio = fx["peak_limit_scale"][party] / fx_twin["peak_limit_scale"][party]
            got, want = call.audio[keep, ch], twin.audio[keep, ch] * ratio
            # up to the coded tails of the receive-path sounds and the 4-decimal rounding of the scales
            assert np.abs(got - want).max() < 5e-4
            assert not np.array_equal(call.audio[~keep, ch], twin.audio[~keep, ch])  # the sounds are there
