"""Syllable counts for espeak-ng speech and the cached TTS renderer (real espeak-ng)."""

from __future__ import annotations

import numpy as np
import pytest
from pacelight.sim.syllables import count_syllables, ipa_nuclei, render_tts


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("Thank you for calling, how can I help you today?", "en", 12),
        ("I understand your frustration.", "en", 8),
        ("Здравствуйте, чем могу помочь?", "ru", 8),
        ("ni3 hao3, qing3 wen4 you3 shen2 me ke3 yi3 bang1 nin2", "cmn", 11),
        ("ni3hao3", "cmn", 2),
        ("", "en", 0),
    ],
)
def test_count_syllables(text: str, lang: str, expected: int) -> None:
    assert count_syllables(text, lang) == expected


def test_ipa_nuclei_diphthongs_and_syllabic_consonants() -> None:
    assert ipa_nuclei("hˌaʊ kæn aɪ hˈɛlp") == 4
    assert ipa_nuclei("bˈʌʔn̩") == 2
    assert ipa_nuclei("sˈiːɪŋ") == 2


def test_unsupported_language() -> None:
    with pytest.raises(ValueError):
        count_syllables("Hallo", "xx")


def test_render_tts_cached_and_identical(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PACELIGHT_CACHE_DIR", str(tmp_path))
    a = render_tts("Thank you for calling.", "en-us+f3", 180)
    files = list((tmp_path / "tts").glob("*.flac"))
    assert len(files) == 1
    b = render_tts("Thank you for calling.", "en-us+f3", 180)
    assert a.dtype == np.float32 and a.ndim == 1
    assert np.array_equal(a, b)
    # ~1 s of speech at 16 kHz, audible, not clipped
    assert 0.5 * 16000 < a.size < 3 * 16000
    assert 0.05 < np.abs(a).max() <= 1.0
    fast = render_tts("Thank you for calling.", "en-us+f3", 300)
    assert fast.size < a.size


def test_render_tts_mandarin_pinyin(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PACELIGHT_CACHE_DIR", str(tmp_path))
    a = render_tts("ni3 hao3", "cmn-latn-pinyin", 160)
    assert a.size > 0.3 * 16000
