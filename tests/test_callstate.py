"""Call state: hold music (incl. singing), tones, IVR and mute are not talk (issue 12).

Real components: the tracker on synthesised hold music / call-progress tones / DTMF (pacelight.sim.music)
and espeak-ng speech (pacelight.sim.tts); the pipeline on a simulated call-state call."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pacelight.analysis.callstate import MUSIC, SPEECH, TONE, CallStateSettings, CallStateTracker
from pacelight.frames import FRAME_SAMPLES, SAMPLE_RATE_HZ
from pacelight.sim import music
from pacelight.sim.tts import render_tts

SR = SAMPLE_RATE_HZ
PROMPT = "Thank you for calling. For billing, press one. For technical support, press two."
CUSTOMER = "Hello, I am calling about my last invoice, it looks wrong to me."


def _noise(n: int, db: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 10 ** (db / 20)).astype(np.float32)


def _at(x: np.ndarray, db: float) -> np.ndarray:
    """``x`` scaled to an active RMS of ``db`` dBFS (active: samples above 1 % of the peak)."""
    a = x[np.abs(x) > 0.01 * np.abs(x).max()]
    return (x * 10 ** (db / 20) / np.sqrt(np.mean(a**2))).astype(np.float32)


def _speech(text: str, voice: str, db: float) -> np.ndarray:
    return _at(render_tts(text, voice, 165), db)


def _frames(stereo: np.ndarray) -> np.ndarray:
    n = len(stereo) // FRAME_SAMPLES
    return stereo[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES, 2).transpose(0, 2, 1)


def _run(tr: CallStateTracker, stereo: np.ndarray, block: int = 5, agent_spoken: bool | None = True,
         agent_talk=None) -> np.ndarray:
    """Feed blocks; ``agent_talk(t0_s, t1_s) -> bool`` stands in for the activity's agent state."""
    frames = _frames(stereo)
    if agent_spoken is not None:
        tr.agent_has_spoken = agent_spoken
    out = []
    for b in range(0, len(frames), block):
        fr = np.ascontiguousarray(frames[b : b + block])
        out.append(tr.process(fr))
        if agent_talk is not None:
            tr.observe_agent(agent_talk(b / 100, (b + len(fr)) / 100), len(fr))
    return np.concatenate(out)


def _not_talk(tr: CallStateTracker, allowed: np.ndarray) -> np.ndarray:
    """Receive-path frames that can never be customer talk: masked at once (``allowed``) or cut
    from the closed stretches afterwards (``trim_customer``: hold, IVR, tone runs)."""
    n = len(allowed)
    keep = tr.trim_customer([(0, n)])
    cut = np.ones(n, bool)
    for a, b in keep:
        cut[a:b] = False
    return ~allowed[:, 1] | cut


def _stereo(agent: np.ndarray, rx: np.ndarray) -> np.ndarray:
    return np.stack([agent, rx], axis=1).astype(np.float32)


def _active(x: np.ndarray, db: float = -45.0) -> np.ndarray:
    n = len(x) // FRAME_SAMPLES
    f = x[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)
    return 10 * np.log10(np.mean(f.astype(np.float64) ** 2, 1) + 1e-12) > db


@pytest.mark.parametrize("style", ["sung", "pluck", "spoken"])
def test_hold_music_incl_singing_is_hold_not_talk(style: str) -> None:
    """idle → on hold (music) → released; sung melodies and spoken hold messages stay hold."""
    rng = np.random.default_rng(3)
    speech = _speech("Your call is important to us. Please stay on the line.", "en-gb+m3", -20) \
        if style == "spoken" else None
    m, _ = music.hold_music(10.0, rng, style, speech)
    rx = np.concatenate([_noise(2 * SR, -60), _at(m, -22) + _noise(m.size, -60, 1), _noise(6 * SR, -60, 2)])
    agent = _noise(rx.size, -55, 4)
    tr = CallStateTracker()
    tr.keep_classes = True
    allowed = _run(tr, _stereo(agent, rx))
    tot = tr.finish()
    assert abs(tot.hold_s - 10.0) <= 1.0, tr.intervals_s()
    t = np.arange(len(allowed)) / 100
    during = (t >= 3.0) & (t < 12.0)
    assert _not_talk(tr, allowed)[during].all()  # masked, or cut once the hold was recognised
    if style != "spoken":  # a spoken message over quiet chords is recognised later (then cut)
        assert allowed[(t >= 4.0) & (t < 12.0), 1].mean() < 0.3  # masked at once ≤ 2 s into the hold
    assert allowed[:, 0].all()  # the agent channel is never masked (no tones on it)
    cls = np.concatenate(tr.classes)[: len(t)]
    if style != "spoken":  # a spoken message over quiet chords is hold, but its frames are speech-like
        assert (cls[during, 1] == MUSIC).mean() > 0.6
    assert not tr.on_hold  # music ended → hold released
    assert tot.ivr_s == 0.0


def test_a_hold_message_over_a_quiet_chord_bed_stays_hold_after_the_first_music() -> None:
    """A recorded message over chords only ~10 dB over the line noise: music is decided only in
    the 1.6 s lead-in and the 1 s pause; the message over the bed (never down at the line noise,
    never under the bed) continues the hold instead of counting as the customer."""
    rng = np.random.default_rng(0)
    bed, _ = music.hold_music(9.0, rng, "spoken", None)  # the chords alone
    y = _at(bed, -40)
    sp = _speech("Your call is important to us. All of our agents are busy, please stay on the line.",
                 "en-gb+m3", -20)
    s0 = int(1.6 * SR)
    y[s0 : s0 + sp.size] += sp[: y.size - s0]
    s1 = s0 + sp.size + SR
    y[s1:] += sp[: y.size - s1]
    rx = np.concatenate([_noise(2 * SR, -50), y + _noise(y.size, -50, 1), _noise(6 * SR, -50, 2)])
    tr = CallStateTracker()
    allowed = _run(tr, _stereo(_noise(rx.size, -55, 4), rx))
    tot = tr.finish()
    assert abs(tot.hold_s - 9.0) <= 1.0, tr.intervals_s()
    (h0, h1), = tr.holds
    assert abs(h0 - 200) <= 20 and abs(h1 - 1100) <= 20
    t = np.arange(len(allowed)) / 100
    assert _not_talk(tr, allowed)[(t >= 2.2) & (t < 10.8)].all()


def test_a_hold_message_whose_telephone_band_chord_bed_sinks_to_the_line_noise_stays_one_hold() -> None:
    """A spoken hold message over chords that the telephone band thins out (some chords fall to
    a few dB over the line noise, their changes dip to it): the receive path's floor does not
    creep up under the hold, and a chord change (< noise_pause_s at the line noise) does not start
    a new sound run, so the whole 18 s are one hold and nothing of it is customer talk."""
    from pacelight.sim import effects

    rng = np.random.default_rng(3)
    sp = _speech("Your call is important to us. Please stay on the line.", "en-gb+m3", -20)
    m, _ = music.hold_music(18.0, rng, "spoken", sp)
    m = effects.telephone(_at(m, -30)).astype(np.float32)[: m.size]
    rx = np.concatenate([_noise(2 * SR, -45), m + _noise(m.size, -45, 1), _noise(5 * SR, -45, 2)])
    tr = CallStateTracker()
    allowed = _run(tr, _stereo(_noise(rx.size, -55, 5), rx))
    tot = tr.finish()
    assert abs(tot.hold_s - 18.0) <= 1.0, tr.intervals_s()  # was 9.7 s (two thirds of the message as talk)
    t = np.arange(len(allowed)) / 100
    assert _not_talk(tr, allowed)[(t >= 2.5) & (t < 19.5)].mean() > 0.97


def test_a_customer_who_talks_right_after_the_hold_music_counts() -> None:
    """hold → the music stops → the customer talks 0.8 s later: the receive path is masked only
    hold_unmask_s after the hold's last evidence (not the whole hold_release_s), so the customer's
    first phrase is talk; the hold ends with the music."""
    rng = np.random.default_rng(11)
    m, _ = music.hold_music(8.0, rng, "pluck")
    said = _speech(CUSTOMER, "en-us", -22)
    gap = int(0.8 * SR)
    rx = np.concatenate([_noise(2 * SR, -60), _at(m, -24) + _noise(m.size, -60, 1), _noise(gap, -60, 2),
                         said + _noise(said.size, -60, 3), _noise(3 * SR, -60, 4)])
    tr = CallStateTracker()
    allowed = _run(tr, _stereo(_noise(rx.size, -55, 5), rx))
    tot = tr.finish()
    assert abs(tot.hold_s - 8.0) <= 0.5, tr.intervals_s()
    s0 = (2 * SR + m.size + gap) // FRAME_SAMPLES
    speech = np.zeros(len(allowed), bool)
    speech[s0 : s0 + said.size // FRAME_SAMPLES] = True
    speech &= _active(rx)[: len(allowed)]
    assert 1 - _not_talk(tr, allowed)[speech].mean() > 0.8  # was 0.29 (masked until the hold's release)


def test_a_busy_tone_right_after_the_hold_music_is_not_talk_and_does_not_extend_the_hold() -> None:
    """hold (sung) → 0.3 s of line noise → busy tone: the pause at the line noise ends the music
    (its last verdict does not carry over the pause, and a tone after it is a call-progress tone,
    not a sung note), so the busy tone is neither customer talk nor hold."""
    rng = np.random.default_rng(12)
    m, _ = music.hold_music(8.0, rng, "sung")
    busy, marks = music.cadence_tone((480.0, 620.0), 0.5, 0.5, 3.0)
    gap = int(0.3 * SR)
    rx = np.concatenate([_noise(2 * SR, -60), _at(m, -24) + _noise(m.size, -60, 1), _noise(gap, -60, 2),
                         _at(busy, -26) + _noise(busy.size, -60, 3), _noise(2 * SR, -60, 4)])
    tr = CallStateTracker()
    allowed = _run(tr, _stereo(_noise(rx.size, -55, 5), rx))
    tot = tr.finish()
    assert abs(tot.hold_s - 8.0) <= 0.3, tr.intervals_s()
    b0 = (2 * SR + m.size + gap) // FRAME_SAMPLES
    on = np.zeros(len(allowed), bool)
    for a, z in marks:
        on[b0 + a // FRAME_SAMPLES : b0 + z // FRAME_SAMPLES] = True
    assert _not_talk(tr, allowed)[on].mean() > 0.95


def test_a_hold_whose_first_sung_note_looks_like_a_busy_tone_is_no_hang_up() -> None:
    """The conversation has started; the hold music opens with a long sung note that is taken for a
    call-progress tone (a hang-up) before any music is decided. Music decided after it with no
    pause at the line noise in between (a busy cadence has one) revokes the hang-up, so the agent
    talking over the hold still counts (was: all of it cut as talk after the far end hung up)."""
    from pacelight.sim import effects

    rng = np.random.default_rng(10)
    m, _ = music.hold_music(10.0, rng, "sung")
    m = effects.telephone(_at(m, -16)).astype(np.float32)[: m.size]
    rx = np.concatenate([_noise(2 * SR, -34), m + _noise(m.size, -34, 1), _noise(3 * SR, -34, 2)])
    said = _speech("Sorry for the wait, I am still checking.", "en-us", -22)
    agent = _noise(rx.size, -55, 5)
    a0 = 5 * SR
    agent[a0 : a0 + said.size] += said
    tr = CallStateTracker()
    _run(tr, _stereo(agent, rx))
    tot = tr.finish()
    assert abs(tot.hold_s - 10.0) <= 1.0, tr.intervals_s()
    assert not tr.quiet_for_cues
    span = (a0 // FRAME_SAMPLES, (a0 + said.size) // FRAME_SAMPLES)
    assert tr.trim_agent([span]) == [span]


def test_the_agents_line_echo_after_the_music_does_not_extend_the_hold() -> None:
    rng = np.random.default_rng(1)
    m, _ = music.hold_music(8.0, rng, "pluck")
    rx = np.concatenate([_noise(SR, -60), _at(m, -20), _noise(8 * SR, -60)]) + _noise(17 * SR, -60, 3)
    said = _speech("Thanks for waiting, I have found your invoice and the error in it.", "en-us", -20)
    agent = _noise(rx.size, -55, 5)
    a0 = int(9.3 * SR)
    agent[a0 : a0 + said.size] += said
    rx[a0 + 160 : a0 + 160 + said.size] += said * 10 ** (-15 / 20)  # hybrid echo, 10 ms later, 15 dB down
    tr = CallStateTracker()
    _run(tr, _stereo(agent, rx))
    tot = tr.finish()
    assert abs(tot.hold_s - 8.0) <= 0.2, tr.intervals_s()


def test_agent_talking_over_hold_music_still_counts_for_the_agent() -> None:
    rng = np.random.default_rng(4)
    m, _ = music.hold_music(12.0, rng, "pad")
    rx = np.concatenate([_noise(SR, -60), _at(m, -20), _noise(2 * SR, -60)]) + _noise(15 * SR, -60, 3)
    said = _speech("Sorry for the wait, I am still checking.", "en-us", -22)
    agent = _noise(rx.size, -55, 5)
    agent[6 * SR : 6 * SR + said.size] += said
    tr = CallStateTracker()
    allowed = _run(tr, _stereo(agent, rx))
    assert tr.on_hold
    assert allowed[:, 0].all()
    assert not allowed[400:1300, 1].any()


def test_ringback_and_busy_tones_are_not_talk() -> None:
    ring, _ = music.cadence_tone((440.0, 480.0), 2.0, 4.0, 8.0)
    busy, _ = music.cadence_tone((480.0, 620.0), 0.5, 0.5, 4.0)
    rx = np.concatenate([np.zeros(SR // 2, np.float32), ring, busy]) * 10 ** (-24 / 20) + _noise(12 * SR + SR // 2, -60)
    tr = CallStateTracker()
    tr.keep_classes = True
    allowed = _run(tr, _stereo(_noise(rx.size, -55, 5), rx))
    tr.finish()
    cls = np.concatenate(tr.classes)[: len(allowed), 1]
    on = np.abs(rx[: len(allowed) * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)).max(1) > 0.02
    assert (cls[on] == TONE).mean() > 0.8
    assert _not_talk(tr, allowed)[on].mean() > 0.95  # masked by level, or cut as tone runs
    t = np.arange(len(allowed)) / 100
    assert allowed[on & (t > 9.1), 1].mean() < 0.2  # busy cadence after its first burst: masked at once
    assert tr.totals().hold_s == 0.0  # tones are not hold music
    # their echo in the headset microphone is not agent talk either (closed agent stretches are cut)
    busy0 = int(8.5 * 100)
    assert tr.trim_agent([(busy0, busy0 + 300)]) != [(busy0, busy0 + 300)]


def test_ringback_then_prompt_is_ivr_until_the_agent_talks_then_the_customer_counts() -> None:
    """idle → IVR armed by ringback → prompt masked → agent greets → disarmed → customer counts."""
    ring, _ = music.cadence_tone((440.0, 480.0), 2.0, 4.0, 2.0)
    prompt = _speech(PROMPT, "en-gb-scotland+m2", -22)
    cust = _speech(CUSTOMER, "en-us+f3", -20)
    gap = _noise(3 * SR, -60)
    rx = np.concatenate([_noise(SR // 2, -60), ring * 10 ** (-24 / 20), _noise(SR // 2, -60), prompt, gap, cust,
                         _noise(SR, -60)])
    rx = rx + _noise(rx.size, -62, 8)
    p0, p1 = 3.0, 3.0 + prompt.size / SR
    greet = (p1 + 1.0, p1 + 2.5)  # the agent greets in the gap (activity's provisional state)
    tr = CallStateTracker()
    allowed = _run(tr, _stereo(_noise(rx.size, -55, 9), rx), agent_spoken=None,
                   agent_talk=lambda a, b: greet[0] <= a < greet[1])
    assert tr.agent_has_spoken and not tr.ivr_active
    t = np.arange(len(allowed)) / 100
    assert not allowed[(t >= p0) & (t < p1), 1].any()  # the prompt is masked at once
    c = (t >= p1 + 3.0) & _active(rx)[: len(t)]
    assert allowed[c, 1].mean() > 0.95  # the customer after the greeting is talk
    tot = tr.finish()
    assert abs(tot.ivr_s - prompt.size / SR) <= 1.0, tr.intervals_s()


def test_customer_who_speaks_first_without_machine_evidence_is_not_ivr() -> None:
    cust = _speech(CUSTOMER, "en-us+f3", -20)
    rx = np.concatenate([_noise(SR // 2, -60), cust, _noise(SR, -60)])
    rx = rx + _noise(rx.size, -62, 1)
    tr = CallStateTracker()
    tr.keep_classes = True
    allowed = _run(tr, _stereo(_noise(rx.size, -55, 2), rx), agent_spoken=None)
    assert not tr.agent_has_spoken
    assert tr.finish().ivr_s == 0.0
    act = _active(rx)[: len(allowed)]
    assert allowed[act, 1].mean() > 0.97
    assert (np.concatenate(tr.classes)[: len(allowed)][act, 1] == SPEECH).mean() > 0.9


def test_agent_dtmf_is_not_agent_talk_and_arms_ivr() -> None:
    """Mid-call: the agent keys digits (masked on the agent channel) → a prompt answers (IVR)."""
    rng = np.random.default_rng(6)
    digits, marks = music.dtmf("4071#", rng)
    prompt = _speech("Please enter your extension followed by the hash key.", "en-gb+m3", -22)
    n = 2 * SR + digits.size + SR // 2 + prompt.size + SR
    agent = _noise(n, -55, 3)
    agent[2 * SR : 2 * SR + digits.size] += _at(digits, -20)
    rx = _noise(n, -62, 4)
    p0 = 2 * SR + digits.size + SR // 2
    rx[p0 : p0 + prompt.size] += prompt
    tr = CallStateTracker()
    allowed = _run(tr, _stereo(agent, rx), agent_spoken=True)
    assert tr.ivr_active
    t = np.arange(len(allowed))
    assert not allowed[(t >= p0 // FRAME_SAMPLES) & (t < (p0 + prompt.size) // FRAME_SAMPLES), 1].any()
    assert tr.trim_agent([(0, 50)]) == []  # while a machine is on the line the agent is not in conversation
    assert tr.finish().ivr_s > 0.6 * prompt.size / SR


def test_a_single_agent_digit_is_cut_from_agent_talk_and_speech_after_it_stays() -> None:
    """One DTMF key mid-call (too few to arm the IVR rule): its frames are cut from the agent's
    closed stretches (scored on demand when a stretch closes); the agent's speech after it stays."""
    rng = np.random.default_rng(7)
    digit, marks = music.dtmf("5", rng)
    said = _speech("Let me put you through.", "en-us", -20)
    n = 3 * SR + digit.size + said.size + SR
    agent = _noise(n, -55, 3)
    agent[2 * SR : 2 * SR + digit.size] += _at(digit, -20)
    s0 = 3 * SR + digit.size
    agent[s0 : s0 + said.size] += said
    tr = CallStateTracker()
    allowed = _run(tr, _stereo(agent, _noise(n, -62, 4)), agent_spoken=True)
    assert not tr.ivr_active and allowed[:, 0].all()
    a, b, _d = marks[0]
    key = np.arange((2 * SR + a) // FRAME_SAMPLES, (2 * SR + b) // FRAME_SAMPLES)
    kept = np.zeros(len(allowed), bool)
    for x, y in tr.trim_agent([(int(key[0]) - 5, int(key[-1]) + 10), (s0 // FRAME_SAMPLES, (s0 + said.size) // FRAME_SAMPLES)]):
        kept[x:y] = True
    assert not kept[key].any()  # the key is not agent talk
    assert kept[s0 // FRAME_SAMPLES : (s0 + said.size) // FRAME_SAMPLES].all()  # the sentence is


def test_dtmf_a_few_db_over_room_babble_still_scores_as_digits_and_speech_does_not() -> None:
    """Digits keyed only ~6 dB over the room's babble (their share of the window energy ≈ 0.75):
    the background (20th percentile of the last 0.5 s) is taken out, so they score as digits; the
    agent's own speech over the same babble never scores as a digit for two frames in a row."""
    from pacelight.analysis.callstate_features import DtmfDetector

    rng = np.random.default_rng(8)
    digits, marks = music.dtmf("8285*0", rng)
    n = 6 * SR
    bg = _noise(n, -50, 5)
    for text, voice in ((CUSTOMER, "ru"), (PROMPT, "en-us+f4")):  # two neighbours talking
        x = _speech(text, voice, -38)[:n]
        bg[: x.size] += x
    agent = bg.copy()
    agent[SR : SR + digits.size] += _at(digits, -31)
    said = _speech("Let me check that for you, one moment please.", "en-us", -20)
    s0 = 3 * SR
    agent[s0 : s0 + said.size] += said[: n - s0]
    nf = n // FRAME_SAMPLES
    score = DtmfDetector()(agent[: nf * FRAME_SAMPLES].reshape(nf, FRAME_SAMPLES))
    inner = np.concatenate([np.arange((SR + a) // FRAME_SAMPLES + 1, (SR + b) // FRAME_SAMPLES - 1)
                            for a, b, _d in marks])
    assert (score[inner] >= 0.8).mean() > 0.75  # 0.71 scored against the whole window energy
    hit = score[s0 // FRAME_SAMPLES : nf] >= 0.8
    assert not (hit[1:] & hit[:-1]).any()


@pytest.mark.parametrize("style", ["line_silence", "comfort_noise"])
def test_agent_mute_is_reported(style: str) -> None:
    """agent talking → muted (line silence or comfort noise far under the floor) → unmuted."""
    agent = _noise(12 * SR, -45, 10)
    agent[4 * SR : 8 * SR] = 0.0 if style == "line_silence" else _noise(4 * SR, -66, 13)
    rx = _noise(agent.size, -60, 11)
    tr = CallStateTracker()
    _run(tr, _stereo(agent, rx))
    tot = tr.finish()
    assert abs(tot.mute_s - 4.0) <= 0.3, tr.intervals_s()


def test_after_an_unmute_line_noise_is_not_agent_talk_but_speech_is() -> None:
    """muted (line silence) → unmuted: the returning line noise is masked while the activity's floor
    settles; the agent's speech after the unmute is allowed."""
    agent = _noise(14 * SR, -50, 10)
    agent[4 * SR : 8 * SR] = 0.0
    said = _speech("Sorry, I was muted.", "en-us", -20)
    agent[10 * SR : 10 * SR + said.size] += said
    tr = CallStateTracker()
    allowed = _run(tr, _stereo(agent, _noise(agent.size, -60, 11)))
    tr.finish()
    assert len(tr.mutes) == 1
    end = tr.mutes[0][1]
    assert not allowed[end + tr.s.analysis_frames : 10 * 100, 0].any()  # noise after the unmute (after its detection)
    assert tr.trim_agent([(end, end + 30)]) == []  # ... and before it: cut from closed stretches
    voiced = _active(agent, -35)[10 * 100 : (10 * SR + said.size) // FRAME_SAMPLES]
    assert allowed[10 * 100 : (10 * SR + said.size) // FRAME_SAMPLES, 0][voiced].all()


def test_busy_tone_after_the_conversation_is_a_hang_up() -> None:
    """conversation → the far end hangs up (busy tone): the tone is not customer talk, agent talk
    after it is not conversation and cues stay quiet; customer speech afterwards resumes the call."""
    busy, _ = music.cadence_tone((480.0, 620.0), 0.5, 0.5, 3.0)
    rx = _noise(9 * SR, -60, 3)
    rx[2 * SR : 2 * SR + busy.size] += busy * 10 ** (-24 / 20)
    said = _speech(CUSTOMER, "en-gb+m3", -22)
    rx = np.concatenate([rx, said, _noise(SR, -60, 4)])
    tr = CallStateTracker()
    allowed = _run(tr, _stereo(_noise(rx.size, -55, 5), rx), block=5)
    on = np.zeros(len(allowed), bool)
    on[200:500] = np.abs(busy[: 300 * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)).max(1) > 0.1
    assert _not_talk(tr, allowed)[on].mean() > 0.95
    assert tr._ended_at is None  # the customer talked again: the call resumed
    tr2 = CallStateTracker()
    _run(tr2, _stereo(_noise(rx.size, -55, 5), rx)[: 6 * SR])
    assert tr2.quiet_for_cues  # hung up: no cues
    assert tr2.trim_agent([(450, 550)]) == []  # "hello? hello?" to nobody is not conversation


def test_clean_digital_silence_is_not_mute() -> None:
    agent = np.zeros(8 * SR, np.float32)
    agent[SR : 2 * SR] = _noise(SR, -20, 12)
    tr = CallStateTracker()
    _run(tr, _stereo(agent, np.zeros_like(agent)))
    assert tr.finish().mute_s == 0.0


def test_results_do_not_depend_on_block_size() -> None:
    rng = np.random.default_rng(5)
    m, _ = music.hold_music(6.0, rng, "pad")
    ring, _ = music.cadence_tone((440.0, 480.0), 2.0, 4.0, 2.5)
    digits, _ = music.dtmf("5*9", rng)
    rx = np.concatenate([ring * 0.05, _noise(SR, -60), m * 0.1, _noise(2 * SR, -60, 1)])
    agent = _noise(rx.size, -50, 2)
    agent[3 * SR : 3 * SR + digits.size] += digits * 0.1
    agent[int(9.5 * SR) :] = 0.0  # a mute at the end (final partial batch)
    st = _stereo(agent, rx)[: rx.size - 37 * FRAME_SAMPLES]  # not a whole number of batches
    res = []
    for block in (5, 3, 20, 7, 1):
        tr = CallStateTracker()
        tr.keep_classes = True
        a = _run(tr, st, block)
        tot = tr.finish()
        res.append((a, np.concatenate(tr.classes), tot))
    assert res[0][2].hold_s > 4.0 and res[0][2].mute_s > 0.5
    for a, c, tot in res[1:]:
        np.testing.assert_array_equal(a, res[0][0])
        np.testing.assert_array_equal(c, res[0][1])
        assert tot == res[0][2]


def test_agent_digit_runs_do_not_depend_on_block_size() -> None:
    """A digit's frames (cut from the agent's talk) are the same however the audio is blocked —
    also when a block fills and analyses a batch part-way (the runs are placed on the global clock)."""
    rng = np.random.default_rng(11)
    digit, _marks = music.dtmf("7", rng)
    n = 4 * SR
    agent = _noise(n, -55, 6)
    agent[int(1.83 * SR) : int(1.83 * SR) + digit.size] += _at(digit, -20)
    st = _stereo(agent, _noise(n, -62, 7))
    cuts = []
    for block in (1, 5, 20, 7):
        tr = CallStateTracker()
        _run(tr, st, block, agent_spoken=True)
        tr.finish()
        cuts.append(tr.trim_agent([(0, n // FRAME_SAMPLES)]))
    assert len(cuts[0]) == 2, cuts[0]  # the digit is cut out of the one stretch
    assert all(c == cuts[0] for c in cuts[1:]), cuts


def test_pipeline_result_does_not_depend_on_chunking(tmp_path) -> None:
    from pacelight.analysis.pipeline import CallAnalyzer, PipelineSettings
    from pacelight.sim.call import CallSpec, simulate_call

    call = simulate_call(CallSpec(duration_s=40.0, call_state=True), 31, call_id="cs-chunk")
    audio = np.asarray(call.audio, np.float32)
    out = []
    for chunk in (800, 16000, 3331):
        an = CallAnalyzer(SAMPLE_RATE_HZ, PipelineSettings(call_state=CallStateSettings()))
        for i in range(0, len(audio), chunk):
            an.feed(audio[i : i + chunk])
        s = an.finish(with_segments=True).to_dict()
        s.pop("call_id"), s.pop("started_at")
        out.append(s)
    assert out[0]["schema"] == "pacelight.call-summary/1.1"
    assert out[0]["call_state"]["ivr_s"] > 0
    assert out[1] == out[0] and out[2] == out[0]


def test_settings_validate_and_disable() -> None:
    with pytest.raises(ValueError):
        CallStateSettings(hold_min_music_s=5.0, hold_window_s=3.0)
    with pytest.raises(ValueError):
        CallStateSettings(band_low_hz=4000.0, band_high_hz=3000.0)
    from pacelight.analysis.pipeline import CallAnalyzer, PipelineSettings

    off = CallAnalyzer(SAMPLE_RATE_HZ, PipelineSettings(call_state=replace(CallStateSettings(), enabled=False)))
    assert off._callstate is None


def test_config_table_enables_overrides_or_disables_the_stage(tmp_path) -> None:
    from pacelight.config import load_pipeline_settings

    cfg = tmp_path / "device.toml"
    cfg.write_text("[pipeline.call_state]\nhold_release_s = 2.0\n")
    s = load_pipeline_settings(cfg)
    assert s.call_state is not None and s.call_state.hold_release_s == 2.0 and s.call_state.enabled
    cfg.write_text("[pipeline.call_state]\nenabled = false\n")
    assert not load_pipeline_settings(cfg).call_state.enabled
    from pacelight.errors import ConfigError

    cfg.write_text("[pipeline.call_state]\nhold_sec = 2.0\n")
    with pytest.raises(ConfigError):
        load_pipeline_settings(cfg)


def test_a_tone_burst_closed_before_it_is_recognised_is_held_back_then_cut() -> None:
    """transition: quiet → busy tone. A customer stretch over the first 0.5 s beep closes before
    the tone is recognised: ``trim_customer`` holds it back (``held_start``) and then drops it."""
    busy, _ = music.cadence_tone((480.0, 620.0), 0.5, 0.5, 2.0)
    rx = np.concatenate([_noise(SR, -60), busy * 0.05 + _noise(busy.size, -60, 1), _noise(2 * SR, -60, 2)])
    frames = _frames(_stereo(_noise(rx.size, -55, 3), rx))
    tr = CallStateTracker()
    tr.agent_has_spoken = True
    beep = (103, 148)
    out: list[tuple[int, int]] = []
    for b in range(0, len(frames), 5):
        tr.process(np.ascontiguousarray(frames[b : b + 5]))
        out += tr.trim_customer([beep] if beep[1] + 15 == b + 5 else [])  # closed after a 0.15 s hangover
        if b + 5 == beep[1] + 15:
            assert out == [] and tr.held_start(b + 5) == beep[0]  # not decided yet: held back
    tr.finish()
    out += tr.trim_customer([], final=True)
    assert out == []  # the beep was cut once recognised
    assert tr.held_start(10**6) == 10**6
