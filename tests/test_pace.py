"""Pace estimator (syllables/s): robustness, streaming invariance, espeak monotonicity, EmoDB sanity."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from pacelight.frames import FRAME_SAMPLES, SAMPLE_RATE_HZ
from pacelight.pace import PaceSettings, SyllableRateEstimator, estimate_rate
from pacelight.pace.calibrate import default_data_dir, load_emodb
from pacelight.pace.estimator import _energy_activity, frames_from_signal, run_estimator

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
SENTENCES = (
    "Thank you for calling customer support, my name is Alex.",
    "Could you please confirm your account number for me?",
    "Let me pull up your account, it will only take a moment.",
    "I can see the last payment arrived on the third of the month.",
    "Would you mind if I put you on a short hold?",
    "The replacement should arrive within five working days.",
)


def _speech(speed: int = 175) -> tuple[np.ndarray, int]:
    from pacelight.sim.syllables import count_syllables, render_tts

    gap = np.zeros(int(0.3 * SAMPLE_RATE_HZ), np.float32)
    x = np.concatenate([np.concatenate([render_tts(s, "en-us", speed), gap]) for s in SENTENCES])
    return x, sum(count_syllables(s, "en") for s in SENTENCES)


def _feed(x: np.ndarray, active: np.ndarray, block: int, settings: PaceSettings | None = None):
    frames = frames_from_signal(x)
    return run_estimator(frames, active, settings, block_frames=block)


def test_silence_gives_none_and_no_syllables():
    x = np.zeros(SAMPLE_RATE_HZ * 12, np.float32)
    est = _feed(x, np.ones(1200, bool), 5)
    assert est.syllables == 0
    assert est.voiced_s == pytest.approx(12.0)
    assert est.call_rate_syl_s() == 0.0 and est.rolling_rate_syl_s() == 0.0
    rate, syl, voiced = estimate_rate(x)  # energy activity: nothing active
    assert rate is None and syl == 0 and voiced == 0


def test_music_like_tones_are_not_absurd():
    rng = np.random.default_rng(3)
    t = np.arange(int(0.25 * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    notes = []
    for f in rng.choice([262.0, 330.0, 392.0, 523.0, 659.0], size=60):  # 15 s of legato notes + harmonics
        notes.append(0.3 * (np.sin(2 * np.pi * f * t) + 0.5 * np.sin(4 * np.pi * f * t)))
    x = np.concatenate(notes).astype(np.float32)
    est = _feed(x, np.ones(frames_from_signal(x).shape[0], bool), 5)
    rate = est.call_rate_syl_s()
    assert rate is not None and 0.0 <= rate <= 10.0
    # a steady tone has no nuclei except at its onset/offset
    steady = (0.5 * np.sin(2 * np.pi * 440.0 * np.arange(SAMPLE_RATE_HZ * 10) / SAMPLE_RATE_HZ)).astype(np.float32)
    est = _feed(steady, np.ones(1000, bool), 5)
    assert est.raw_nuclei <= 2


def test_bad_input_raises_value_error():
    est = SyllableRateEstimator()
    with pytest.raises(ValueError):
        est.process(np.zeros((3, 100), np.float32), np.ones(3, bool))
    with pytest.raises(ValueError):
        est.process(np.zeros((3, FRAME_SAMPLES), np.float32), np.ones(2, bool))
    with pytest.raises(ValueError):
        PaceSettings(smooth_frames=4)
    with pytest.raises(ValueError):
        PaceSettings(calibration=0.0)


@needs_espeak
def test_short_speech_is_none_but_counted():
    x, _ = _speech()
    x = x[: 3 * SAMPLE_RATE_HZ]
    rate, syl, voiced = estimate_rate(x)
    assert rate is None and 0 < voiced < 8.0 and syl > 3
    est = _feed(x, _energy_activity(frames_from_signal(x)), 5)
    assert est.rolling_rate_syl_s() is None and est.call_rate_syl_s() is None
    assert est.timeline() == []


@needs_espeak
def test_block_size_invariance_and_rate_close_to_truth():
    x, syl = _speech()
    act = _energy_activity(frames_from_signal(x))
    s = PaceSettings(timeline_step_s=0.5)
    runs = [_feed(x, act, b, s) for b in (1, 5, 100, 7)]
    ref = runs[0]
    for e in runs[1:]:
        assert e.raw_nuclei == ref.raw_nuclei
        assert e.voiced_s == ref.voiced_s
        assert e.timeline() == ref.timeline()
        assert e.rolling_rate_syl_s() == ref.rolling_rate_syl_s()
    assert ref.voiced_s > 8.0
    true_rate = syl / ref.voiced_s
    assert ref.call_rate_syl_s() == pytest.approx(true_rate, rel=0.15)
    assert ref.timeline() and all(0 < r < 12 for _, r in ref.timeline())
    # offline helper runs the same class
    rate, n, voiced = estimate_rate(x, act)
    assert rate == ref.call_rate_syl_s() and voiced == ref.voiced_s


@needs_espeak
def test_clipping_changes_little():
    x, _ = _speech()
    act = _energy_activity(frames_from_signal(x))
    clean = _feed(x, act, 5).call_rate_syl_s()
    clipped = _feed(np.clip(x * 20.0, -1.0, 1.0), act, 5).call_rate_syl_s()
    assert clean and clipped and abs(clipped / clean - 1) < 0.2


@needs_espeak
def test_level_drop_mid_call_is_followed():
    x, _ = _speech()
    frames = frames_from_signal(x)
    act = _energy_activity(frames)
    ref = _feed(x, act, 5)
    quiet = np.concatenate([frames, frames * 0.1])  # the line level drops by 20 dB mid-call
    est = run_estimator(quiet, np.concatenate([act, act]))
    second = (est.syllables - ref.syllables) / ref.voiced_s
    assert second == pytest.approx(ref.call_rate_syl_s(), rel=0.1)


@needs_espeak
def test_monotonic_in_espeak_speed():
    rates = []
    for speed in (120, 180, 250):
        x, syl = _speech(speed)
        rate, _, voiced = estimate_rate(x)
        assert rate is not None
        assert rate == pytest.approx(syl / voiced, rel=0.15)
        rates.append(rate)
    assert rates[0] < rates[1] < rates[2]


@pytest.mark.skipif(not (default_data_dir() / "emodb_syllables.csv").exists(), reason="no shared EmoDB data")
def test_emodb_sanity_on_a_few_held_out_clips():
    clips = [c for c in load_emodb(splits=("test",)) if c.syllables >= 8 and not c.pauses_s][::8][:10]
    s = PaceSettings(min_voiced_s=0.0)
    true, est = [], []
    for c in clips:
        frames = frames_from_signal(c.load())
        e = run_estimator(frames, c.active_mask(frames.shape[0]), s)
        true.append(c.syllables)
        est.append(e.syllables)
        assert 0.5 * c.syllables <= e.syllables <= 1.5 * c.syllables
    assert abs(sum(est) / sum(true) - 1) < 0.2


@pytest.mark.skipif(not (default_data_dir() / "emodb_syllables.csv").exists(), reason="no shared EmoDB data")
def test_emodb_syllable_spans_follow_onsets_pauses_and_speech_end():
    clips = load_emodb(splits=("train", "val", "test"))
    assert all(c.emotion for c in clips)
    for c in clips:
        spans = c.syllable_spans_s()
        assert len(spans) == c.syllables
        assert spans[0][0] == pytest.approx(c.speech_start_s, abs=1e-3)
        assert all(a < b <= c.speech_end_s + 1e-9 for a, b in spans)
    paused = next(c for c in clips if c.pauses_s)
    lo, _hi = paused.pauses_s[0]
    # the syllable before a labelled pause ends where the pause starts
    assert any(b == pytest.approx(lo) for _a, b in paused.syllable_spans_s())


@pytest.mark.skipif(not (default_data_dir() / "emodb_syllables.csv").exists(), reason="no shared EmoDB data")
def test_calibration_constant_matches_a_refit_on_emodb_train():
    from pacelight.pace import CALIBRATION_SCALE
    from pacelight.pace.calibrate import fit_calibration

    assert fit_calibration() == pytest.approx(CALIBRATION_SCALE, abs=0.002)


def _same_however_blocked(x: np.ndarray, act: np.ndarray, s: PaceSettings):
    """The estimator fed in blocks of 1, 5, 100 and 7 frames: identical counts, voiced time and
    timeline; the voiced time is also the peak picker's. Returns the first run."""
    runs = [_feed(x, act, b, s) for b in (1, 5, 100, 7)]
    ref = runs[0]
    for e in runs[1:]:
        assert e.raw_nuclei == ref.raw_nuclei and e.voiced_s == ref.voiced_s
        assert e.timeline() == ref.timeline()
    assert ref.voiced_s == _feed(x, act, 5, PaceSettings(detector="peaks")).voiced_s
    return ref


@needs_espeak
def test_learned_detector_is_streaming_and_matches_the_training_features():
    from pacelight.pace.estimator import NUCLEUS_MODEL, load_nucleus_model
    from pacelight_train.syllables import clip_features

    x, syl = _speech()
    act = _energy_activity(frames_from_signal(x))
    s = PaceSettings(detector="learned", timeline_step_s=0.5)
    ref = _same_however_blocked(x, act, s)
    # the streaming count is the sum of the model's density over active frames, computed offline
    # from the training code's features; the emitted nuclei (rolling window) are that sum rounded
    m = load_nucleus_model(NUCLEUS_MODEL)
    feats, level = clip_features(x, act)
    mass = float((m(feats) * (act & (level >= s.abs_floor_db))).sum())
    assert ref.raw_nuclei == pytest.approx(mass, rel=1e-4)
    assert ref._raw_count == int(np.floor(mass + 0.5))
    assert 0.5 * syl < ref.syllables < 1.5 * syl


def test_learned_detector_on_silence_tones_and_nan():
    s = PaceSettings(detector="learned")
    est = _feed(np.zeros(SAMPLE_RATE_HZ * 12, np.float32), np.ones(1200, bool), 5, s)
    assert est.raw_nuclei <= 1 and est.call_rate_syl_s() is not None and est.call_rate_syl_s() < 0.2
    steady = (0.5 * np.sin(2 * np.pi * 440.0 * np.arange(SAMPLE_RATE_HZ * 10) / SAMPLE_RATE_HZ)).astype(np.float32)
    rate = _feed(steady, np.ones(1000, bool), 5, s).call_rate_syl_s()
    assert rate is not None and 0.0 <= rate <= 10.0
    bad = np.full((200, FRAME_SAMPLES), np.nan, np.float32)
    est = run_estimator(bad, np.ones(200, bool), s)
    assert np.isfinite(est.syllables)
    with pytest.raises(ValueError):
        PaceSettings(detector="neural")


@needs_espeak
def test_event_detector_is_streaming_and_matches_the_training_features():
    from pacelight.pace.estimator import load_event_model
    from pacelight_train.syllable_events import candidates

    x, syl = _speech()
    act = _energy_activity(frames_from_signal(x))
    s = PaceSettings(detector="events", timeline_step_s=0.5)
    ref = _same_however_blocked(x, act, s)
    # the count is the summed nucleus probability of the candidates the training code sees
    feats, times, _ = candidates(x, act)
    assert ref.raw_nuclei == pytest.approx(float(load_event_model()(feats).sum()), rel=1e-4)
    assert ref._raw_count == int(np.floor(ref.raw_nuclei + 0.5)) and times.size == feats.shape[0]
    assert 0.85 * syl < ref.syllables < 1.15 * syl
    clipped = _feed(np.clip(x * 20.0, -1.0, 1.0), act, 5, s).call_rate_syl_s()
    assert clipped and abs(clipped / ref.call_rate_syl_s() - 1) < 0.2


def test_event_detector_on_silence_tones_noise_and_nan():
    s = PaceSettings(detector="events")
    est = _feed(np.zeros(SAMPLE_RATE_HZ * 12, np.float32), np.ones(1200, bool), 5, s)
    assert est.raw_nuclei == 0 and est.call_rate_syl_s() == 0.0
    steady = (0.5 * np.sin(2 * np.pi * 440.0 * np.arange(SAMPLE_RATE_HZ * 10) / SAMPLE_RATE_HZ)).astype(np.float32)
    assert _feed(steady, np.ones(1000, bool), 5, s).raw_nuclei <= 2
    noise = np.random.default_rng(5).normal(0, 0.1, SAMPLE_RATE_HZ * 10).astype(np.float32)
    rate = _feed(noise, np.ones(1000, bool), 5, s).call_rate_syl_s()
    assert rate is not None and 0.0 <= rate <= 10.0
    bad = np.full((200, FRAME_SAMPLES), np.nan, np.float32)
    assert np.isfinite(run_estimator(bad, np.ones(200, bool), s).syllables)


def test_targets_and_baseline(tmp_path):
    from pacelight.pace.targets import (
        AgentBaselineStore,
        TargetSettings,
        effective_target_syl_s,
        language_target_syl_s,
    )

    assert language_target_syl_s("de") == pytest.approx(5.97 * 0.9, abs=0.01)
    assert language_target_syl_s("zh") == pytest.approx(5.18 * 0.9, abs=0.01)
    assert language_target_syl_s("es-MX") == pytest.approx(7.82 * 0.9, abs=0.01)
    assert language_target_syl_s("xx") == 5.5 and language_target_syl_s(None) == 5.5
    cfg = TargetSettings.from_config({"overrides_syl_s": {"EN": 5.0}})
    assert effective_target_syl_s("en-US", settings=cfg) == 5.0
    with pytest.raises(ValueError):
        TargetSettings.from_config({"bogus": 1})
    lang_t = language_target_syl_s("en")
    assert effective_target_syl_s("en", baseline=lang_t * 1.1) == pytest.approx(lang_t * 1.1)
    assert effective_target_syl_s("en", baseline=20.0) == pytest.approx(lang_t * 1.25)

    path = tmp_path / "baseline.json"
    store = AgentBaselineStore(path, n_calls=4, min_calls=3)
    for r in (5.0, None, 6.0, 99.0):
        store.record_call("a1", r)
    assert store.baseline_syl_s("a1") is None
    for r in (5.5, 7.0, 4.0):
        store.record_call("a1", r)
    assert store.baseline_syl_s("a1") == pytest.approx(5.75)  # median of the first 4 valid calls
    assert json.loads(path.read_text())["agents"]["a1"] == [5.0, 6.0, 5.5, 7.0]
    assert AgentBaselineStore(path, n_calls=4, min_calls=3).baseline_syl_s("a1") == pytest.approx(5.75)
    assert not list(tmp_path.glob(".pace-baseline.*"))
