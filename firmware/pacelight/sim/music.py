"""Synthesised hold music: chords, bass, melody, drums, and sung (formant-filtered vowel) or
speech-over-music passages. Vectorised numpy (loops only over notes, never samples)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pacelight.frames import SAMPLE_RATE_HZ as SR

STYLES = ("pad", "pluck", "sung", "spoken")
# Vowel formants (Hz) for the sung voice: a, o, e, u, i.
VOWELS = {"a": (800, 1200, 2500), "o": (500, 900, 2400), "e": (450, 1900, 2600),
          "u": (325, 700, 2400), "i": (300, 2300, 3000)}
PROGRESSIONS = (((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12)),   # I V vi IV
                ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)),     # I IV V I
                ((0, 3, 7), (8, 12, 15), (3, 7, 10), (10, 14, 17)))  # i VI III VII


def midi_hz(m: float) -> float:
    return float(440.0 * 2 ** ((m - 69) / 12))


def _tone(f0: float | np.ndarray, n: int, harmonics: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Additive harmonic tone; ``f0`` may be a per-sample contour (vibrato)."""
    f = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / SR + rng.uniform(0, 2 * np.pi)
    y = np.zeros(n)
    for k, a in enumerate(harmonics, start=1):
        if a and k * float(f.max()) < SR / 2 - 500:
            y += a * np.sin(k * phase)
    return y


def _env(n: int, attack_s: float, decay_s: float | None) -> np.ndarray:
    t = np.arange(n) / SR
    e = np.minimum(1.0, t / max(attack_s, 1e-3))
    if decay_s is not None:
        e = e * np.exp(-t / decay_s)
    r = min(n, int(0.02 * SR))
    if r:
        e[-r:] *= np.linspace(1, 0, r)
    return e


def _formant(x: np.ndarray, vowel: str) -> np.ndarray:
    from scipy.signal import lfilter

    y = np.zeros_like(x)
    for i, fc in enumerate(VOWELS[vowel]):
        bw = 80.0 + 40 * i
        r = np.exp(-np.pi * bw / SR)
        a = [1.0, -2 * r * np.cos(2 * np.pi * fc / SR), r * r]
        y += lfilter([1 - r], a, x) * (1.0 / (i + 1))
    return y


def _drums(n: int, beat: int, rng: np.random.Generator) -> np.ndarray:
    y = np.zeros(n)
    kn = int(0.18 * SR)
    t = np.arange(kn) / SR
    kick = np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 18)
    sn = int(0.12 * SR)
    snare = rng.standard_normal(sn) * np.exp(-np.arange(sn) / SR * 30) * 0.5
    hn = int(0.04 * SR)
    hat = np.diff(rng.standard_normal(hn + 1)) * np.exp(-np.arange(hn) / SR * 90) * 0.15
    for i, pos in enumerate(range(0, n, beat // 2)):
        for hit, on in ((kick, i % 4 == 0), (snare, i % 4 == 2), (hat, True)):
            if on:
                m = min(hit.size, n - pos)
                y[pos:pos + m] += hit[:m]
    return y


def hold_music(dur_s: float, rng: np.random.Generator, style: str | None = None,
               speech: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """``dur_s`` of hold music (float32, unit active RMS) and a description for the truth.

    ``style``: pad (chords + bass + drums), pluck (arpeggio + melody), sung (vowel melody with
    vibrato over chords) or spoken (``speech`` laid over quiet chords, like a recorded hold message).
    """
    n = int(dur_s * SR)
    style = style or str(rng.choice(STYLES))
    bpm = float(rng.uniform(70, 140))
    beat = int(60 / bpm * SR)
    root = int(rng.integers(55, 67))
    prog = PROGRESSIONS[int(rng.integers(0, len(PROGRESSIONS)))]
    bar = 4 * beat
    y = np.zeros(n)
    timbre = {"pad": (1, .5, .3, .2, .1), "pluck": (1, .6, .4, .25, .15, .1), "sung": (1, .4, .2),
              "spoken": (1, .3)}[style]
    for bi, pos in enumerate(range(0, n, bar)):
        m = min(bar, n - pos)
        chord = prog[bi % len(prog)]
        seg = np.zeros(m)
        if style == "pluck":
            for k in range(8):
                p0 = pos + k * beat // 2
                if p0 >= pos + m:
                    break
                nn = min(beat // 2, pos + m - p0)
                note = root + chord[k % 3] + 12 * (k // 3 % 2)
                seg[p0 - pos:p0 - pos + nn] += _tone(midi_hz(note), nn, timbre, rng) * _env(nn, 0.005, 0.25)
        else:
            for iv in chord:
                seg += _tone(midi_hz(root + iv), m, timbre, rng) * _env(m, 0.08, None) * 0.5
        seg += _tone(midi_hz(root - 12 + chord[0]), m, (1, .3), rng) * _env(m, 0.01, 0.8) * 0.8  # bass
        y[pos:pos + m] += seg
    if style in ("pad", "pluck"):
        y += _drums(n, beat, rng) * 1.5
    desc: dict[str, Any] = {"style": style, "bpm": round(bpm, 1), "root_midi": root}
    if style == "sung":
        voice = np.zeros(n)
        vib_hz, vib_st = float(rng.uniform(4.5, 6.5)), float(rng.uniform(0.3, 0.7))
        scale = (0, 2, 4, 5, 7, 9, 11, 12)
        pos = 0
        while pos < n:
            nn = min(n - pos, beat * int(rng.integers(1, 3)))
            note = root + 12 + scale[int(rng.integers(0, len(scale)))]
            t = np.arange(nn) / SR
            f0 = midi_hz(note) * 2 ** (vib_st * np.sin(2 * np.pi * vib_hz * t) / 12)
            src = _tone(f0, nn, tuple(1.0 / k for k in range(1, 25)), rng)
            vowel = str(rng.choice(list(VOWELS)))
            voice[pos:pos + nn] = _formant(src, vowel) * _env(nn, 0.04, None)
            pos += nn
        voice /= np.sqrt(np.mean(voice**2)) + 1e-12
        y = y / (np.sqrt(np.mean(y**2)) + 1e-12) * 0.6 + voice
        desc.update({"vibrato_hz": round(vib_hz, 2), "vibrato_semitones": round(vib_st, 2)})
    elif style == "spoken" and speech is not None:
        y = y / (np.sqrt(np.mean(y**2)) + 1e-12) * 0.4
        sp = np.zeros(n)
        pos = int(0.5 * SR)
        while pos < n:
            m = min(speech.size, n - pos)
            sp[pos:pos + m] = speech[:m]
            pos += speech.size + int(rng.uniform(1.5, 3.0) * SR)
        y = y + sp / (np.sqrt(np.mean(speech**2)) + 1e-12)
    fade = min(n // 2, int(0.2 * SR))
    if fade:
        ramp = np.linspace(0, 1, fade)
        y[:fade] *= ramp
        y[-fade:] *= ramp[::-1]
    y /= np.sqrt(np.mean(y**2)) + 1e-12
    return y.astype(np.float32), desc


DTMF_LOW = (697, 770, 852, 941)
DTMF_HIGH = (1209, 1336, 1477, 1633)
DTMF_KEYS = "123A456B789C*0#D"


def dtmf(digits: str, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """DTMF tone sequence (ITU-T Q.23 pairs), 40–100 ms tones, 50–120 ms gaps; returns the
    signal and the (start, end, digit) sample intervals of each tone."""
    parts, marks, pos = [], [], 0
    for d in digits:
        k = DTMF_KEYS.index(d)
        on = int(rng.uniform(0.04, 0.1) * SR)
        gap = int(rng.uniform(0.05, 0.12) * SR)
        t = np.arange(on) / SR
        tone = 0.5 * (np.sin(2 * np.pi * DTMF_LOW[k // 4] * t) + np.sin(2 * np.pi * DTMF_HIGH[k % 4] * t))
        parts += [tone, np.zeros(gap)]
        marks.append((pos, pos + on, d))
        pos += on + gap
    return np.concatenate(parts).astype(np.float32), marks


def cadence_tone(freqs: tuple[float, float], on_s: float, off_s: float, dur_s: float
                 ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Ringback (440+480 Hz, 2 s on / 4 s off) or busy (480+620 Hz, 0.5/0.5) cadence."""
    n = int(dur_s * SR)
    t = np.arange(n) / SR
    sig = 0.5 * (np.sin(2 * np.pi * freqs[0] * t) + np.sin(2 * np.pi * freqs[1] * t))
    period = on_s + off_s
    gate = (t % period) < on_s
    marks = []
    for c in np.arange(0, dur_s, period):
        e = min(c + on_s, dur_s)
        marks.append((int(round(c * SR)), int(round(e * SR))))
    return (sig * gate).astype(np.float32), marks
