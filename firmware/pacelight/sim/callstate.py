"""Call-state content for the simulator (``CallSpec(call_state=True)``, ``--call-state``).

Adds, with truth: an outbound-call preamble on the receive path (ringback 440+480 Hz 2 s on /
4 s off, a recorded-style IVR prompt in a different espeak voice at a fixed level) and the
agent's DTMF digits (ITU pairs, 40–100 ms) on the agent channel; synthesised music on hold on
the receive path over every hold stretch (chords/pluck/drums, sung vowel melodies with vibrato,
or a spoken hold message over music), sometimes with the agent talking over it; an agent mute
period (line silence or comfort noise on the agent channel); a busy tone (480+620 Hz, 0.5/0.5 s)
after the customer hangs up. None of it is talk: truth ``segments``/``overlaps`` still come from
the parties' own utterances. Truth gains ``call_state`` {hold_s, ivr_s, mute_s}, per-channel
labelled ``classes`` (speech|music|tone|silence|ivr) and ``call_state_events``.

Every call-state choice comes from its own generator (``b.cs_rng``, a child of the call's seed), so
the conversation, levels, line noise and office babble draw exactly what the same schedule draws
without call-state content. ``CallSpec(call_state_sounds=False)`` gives that twin: the same call
(preamble room, forced hold, agent talk over hold, mute-time edits) with none of the call-state
sounds and no call-state truth — the fair "without" of a call-state call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pacelight.frames import FRAME_S, FRAME_SAMPLES
from pacelight.frames import SAMPLE_RATE_HZ as SR
from pacelight.sim import content, effects, music

if TYPE_CHECKING:
    from pacelight.sim.call import _Builder

IVR_PROMPTS = {
    "en": "Thank you for calling. For billing, press one. For technical support, press two. "
          "To hear these options again, press nine.",
    "ru": "Спасибо за звонок. По вопросам оплаты нажмите один. Техническая поддержка, нажмите два.",
    "cmn": "gan3 xie4 nin2 de5 lai2 dian4. zhang4 dan1 wen4 ti2 qing3 an4 yi1. ji4 shu4 zhi1 chi2 qing3 an4 er4.",
}
HOLD_MESSAGES = {
    "en": "Your call is important to us. Please stay on the line.",
    "ru": "Ваш звонок очень важен для нас. Пожалуйста, оставайтесь на линии.",
    "cmn": "nin2 de5 lai2 dian4 dui4 wo3 men5 hen3 zhong4 yao4, qing3 bu2 yao4 gua4 duan4.",
}
LABELS = ("silence", "speech", "music", "tone", "ivr")
IVR_LEVEL_DBFS = -22.0
REF_LEVEL_DB = -20.0  # = pacelight.sim.call.REF_LEVEL_DB (utterances are normalised to it)


def _ivr_voice(b: _Builder) -> str:
    used = set(b.voice.values())
    free = [v for v in content.VOICES[b.lang] if v not in used]
    return free[int(b.cs_rng.integers(0, len(free)))]


def reserve(b: _Builder) -> None:
    """Before scheduling: lay out the preamble (ringback, IVR, DTMF) and reserve the busy tail."""
    rng = b.cs_rng
    dur = b.n / SR
    cs: dict[str, Any] = {}
    t = int(rng.uniform(0.2, 0.6) * SR)
    rings = int(rng.integers(1, 3))
    ring_s = 6.0 * (rings - 1) + 2.0
    ivr_voice = _ivr_voice(b)
    ivr = b.tts(IVR_PROMPTS[b.lang], ivr_voice, 165, 50)
    digits = "".join(str(rng.choice(list("0123456789#*"))) for _ in range(int(rng.integers(3, 7))))
    dtmf_sig, dtmf_marks = music.dtmf(digits, rng)
    budget = 0.35 * dur
    use_ring = ring_s + ivr.size / SR + dtmf_sig.size / SR + 3 < budget
    use_ivr = ivr.size / SR + dtmf_sig.size / SR + 2 < budget
    if use_ring:
        cs["ringback"] = (t, t + int(ring_s * SR), rings)
        t += int((ring_s + rng.uniform(0.3, 1.0)) * SR)
    if use_ivr:
        cs["ivr"] = (t, ivr, ivr_voice)
        t += ivr.size + int(rng.uniform(0.4, 1.0) * SR)
        cs["dtmf"] = (t, dtmf_sig, [(t + s, t + e, d) for s, e, d in dtmf_marks], digits)
        t += dtmf_sig.size + int(rng.uniform(0.3, 0.8) * SR)
    busy_s = float(rng.uniform(2.0, 4.0)) if dur >= 30 else 0.0
    cs["busy_s"] = busy_s
    b.start_offset = t
    b.end_reserve = int((busy_s + 0.6) * SR) if busy_s else 0
    b.force_hold = True
    b.callstate = cs


def plan(b: _Builder) -> dict[str, Any]:
    """After scheduling: agent talk over hold music, and one agent mute period (changes ``b.utts``)."""
    from pacelight.sim.call import Utterance

    rng, cs = b.cs_rng, b.callstate
    talk_over = []
    for h0, h1 in b.holds:
        if rng.random() < 0.5 and (h1 - h0) / SR >= 7.0:
            pool = content.AGENT_SENTENCES[b.lang]
            text = str(pool[int(rng.integers(0, len(pool)))])
            speed = b.speed_for("agent", h0 / SR, rng)
            x = b.tts(text, b.voice["agent"], speed, b.pitch["agent"])
            room = (h1 - h0 - x.size) / SR - 3.0
            if room > 0:
                from pacelight.sim.syllables import count_syllables

                start = h0 + int((1.5 + rng.uniform(0, room)) * SR)
                b.utts.append(Utterance("agent", start, x, "turn", b.lang, b.voice["agent"], speed,
                                        b.pitch["agent"], count_syllables(text, b.lang, b.voice["agent"]), text))
                talk_over.append([round(start / SR, 3), round((start + x.size) / SR, 3)])
    cs["talk_over_hold"] = talk_over
    # Agent mute: inside a long customer turn; agent backchannels there are dropped (muted).
    cands = [u for u in b.utts if u.party == "customer" and u.kind != "backchannel" and u.audio.size >= 4 * SR]
    cs["mute"] = None
    if cands and rng.random() < 0.9:
        c = cands[int(rng.integers(0, len(cands)))]
        b.utts = [u for u in b.utts if not (u.party == "agent" and u.kind == "backchannel"
                                            and c.start <= u.start < c.end)]
        prev_end = max((u.end for u in b.utts if u.party == "agent" and u.start < c.start), default=0)
        next_start = min((u.start for u in b.utts if u.party == "agent" and u.start >= c.start), default=b.n)
        m0 = max(c.start, prev_end + int(0.3 * SR))
        m1 = min(c.end, next_start - int(0.3 * SR), m0 + int(rng.uniform(3.0, 10.0) * SR))
        if m1 - m0 >= 2 * SR:
            cs["mute"] = (m0, m1, str(rng.choice(["line_silence", "comfort_noise"])))
    b.utts.sort(key=lambda v: (v.start, v.party))
    return cs


def _labels_to_runs(lab: np.ndarray) -> list[list[Any]]:
    d = np.flatnonzero(np.diff(lab)) + 1
    starts = np.concatenate(([0], d))
    ends = np.concatenate((d, [lab.size]))
    return [[round(s * FRAME_S, 3), round(e * FRAME_S, 3), LABELS[int(lab[s])]] for s, e in zip(starts, ends, strict=True)]


def _mark(lab: np.ndarray, s: int, e: int, code: int) -> None:
    lab[s // FRAME_SAMPLES: -(-e // FRAME_SAMPLES)] = code


def render(b: _Builder, cs: dict[str, Any], agent: np.ndarray, cust: np.ndarray, truth: dict[str, Any]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Add the call-state audio to the (effected) channels and the call-state truth."""
    rng = b.cs_rng
    n = b.n
    lvl = truth["effects"]["target_level_dbfs"]
    line = effects.telephone if b.spec.effects else (lambda x: x)
    rx_add = np.zeros(n, np.float32)
    nfr = n // FRAME_SAMPLES
    lab = {"agent": np.zeros(nfr, np.int8), "customer": np.zeros(nfr, np.int8)}
    events: dict[str, Any] = {}
    tone_db = float(rng.uniform(-28, -20))
    if "ringback" in cs:
        s, e, rings = cs["ringback"]
        sig, marks = music.cadence_tone((440.0, 480.0), 2.0, 4.0, (e - s) / SR)
        rx_add[s:s + sig.size] += sig * effects.db(tone_db) * np.sqrt(2)
        for a, z in marks:
            _mark(lab["customer"], s + a, s + z, 3)
        events["ringback"] = {"start": round(s / SR, 3), "end": round(e / SR, 3), "rings": rings}
    ivr_s = 0.0
    if "ivr" in cs:
        s, x, voice = cs["ivr"]
        rx_add[s:s + x.size] += x * effects.db(IVR_LEVEL_DBFS - REF_LEVEL_DB)  # renders sit at REF_LEVEL_DB
        _mark(lab["customer"], s, s + x.size, 4)
        ivr_s = x.size / SR
        events["ivr"] = {"start": round(s / SR, 3), "end": round((s + x.size) / SR, 3), "voice": voice,
                         "level_dbfs": IVR_LEVEL_DBFS, "text": IVR_PROMPTS[b.lang]}
    if "dtmf" in cs:
        s, sig, marks, digits = cs["dtmf"]
        g = effects.db(lvl["agent"] + float(rng.uniform(-6, 0))) * np.sqrt(2)
        agent[s:s + sig.size] += sig * g
        for a, z, _d in marks:
            _mark(lab["agent"], a, z, 3)
        events["dtmf"] = {"digits": digits, "tones": [[round(a / SR, 3), round(z / SR, 3), d] for a, z, d in marks]}
    hold_s = 0.0
    holds = []
    for h0, h1 in b.holds:
        speech = None
        style = str(rng.choice(music.STYLES))
        if style == "spoken":
            voice = _ivr_voice(b)
            speech = b.tts(HOLD_MESSAGES[b.lang], voice, 160, 50)
        m, desc = music.hold_music((h1 - h0) / SR, rng, style, speech)
        mdb = lvl["customer"] - float(rng.uniform(0, 6))
        rx_add[h0:h0 + m.size] += m * effects.db(mdb)
        _mark(lab["customer"], h0, h0 + m.size, 2)
        hold_s += m.size / SR
        holds.append({"start": round(h0 / SR, 3), "end": round((h0 + m.size) / SR, 3), **desc,
                      "level_dbfs": round(mdb, 2)})
    events["hold_music"] = holds
    events["talk_over_hold"] = cs.get("talk_over_hold", [])
    busy_s = cs.get("busy_s", 0.0)
    if busy_s:
        last = max([u.end for u in b.utts] + [h1 for _h0, h1 in b.holds] + [0])
        s = last + int(rng.uniform(0.2, 0.5) * SR)
        dur = min(busy_s, (n - s) / SR)
        if dur > 0.5:
            sig, marks = music.cadence_tone((480.0, 620.0), 0.5, 0.5, dur)
            rx_add[s:s + sig.size] += sig * effects.db(tone_db) * np.sqrt(2)
            for a, z in marks:
                _mark(lab["customer"], s + a, s + z, 3)
            events["busy"] = {"start": round(s / SR, 3), "end": round((s + sig.size) / SR, 3)}
    cust = cust + line(rx_add)[:n]
    mute_s = 0.0
    if cs.get("mute"):
        m0, m1, style = cs["mute"]
        if style == "comfort_noise":
            cn = effects.colored_noise(m1 - m0, "pink", rng) * effects.db(float(rng.uniform(-70, -60)))
            agent[m0:m1] = cn
        else:
            agent[m0:m1] = 0.0
        mute_s = (m1 - m0) / SR
        events["mute"] = {"start": round(m0 / SR, 3), "end": round(m1 / SR, 3), "style": style}
    for party in ("agent", "customer"):
        for s, e in truth["segments"][party]:
            lab[party][int(round(s / FRAME_S)):int(round(e / FRAME_S))] = 1
    truth["call_state"] = {"hold_s": round(hold_s, 3), "ivr_s": round(ivr_s, 3), "mute_s": round(mute_s, 3)}
    truth["classes"] = {p: _labels_to_runs(lab[p]) for p in lab}
    truth["call_state_events"] = events
    return agent, cust
