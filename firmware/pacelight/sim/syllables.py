"""Syllable counts for what espeak-ng actually speaks.

``count_syllables(text, lang)`` with ``lang`` in ``{"en", "ru", "cmn"}``:

* ``en``: syllabic nuclei in espeak-ng's own IPA transcription (``espeak-ng -q --ipa``, voice
  ``en-us`` unless given): each vowel symbol is a nucleus, common diphthongs (eɪ, aɪ, ɔɪ, aʊ, oʊ,
  əʊ, ɪə, eə, ʊə) count once, syllabic consonants (n̩, l̩) count. Numbers and abbreviations are
  therefore counted as spoken.
* ``ru``: vowel letters (а е ё и о у ы э ю я); Russian spelling marks every nucleus.
* ``cmn``: tone-numbered pinyin (the only Mandarin espeak-ng speaks here, voice
  ``cmn-latn-pinyin``): one syllable per pinyin token (``ni3hao3`` counts 2, a token without
  a tone digit counts 1).

``render_tts`` is re-exported from :mod:`pacelight.sim.tts` for callers that need both.
"""

from __future__ import annotations

import functools
import re

from pacelight.sim.tts import render_tts, run_espeak

__all__ = ["count_syllables", "render_tts", "LANG_VOICES", "SUPPORTED_LANGS"]

SUPPORTED_LANGS = ("en", "ru", "cmn")
# The default espeak-ng voice per language (used for transcription and as the first TTS choice).
LANG_VOICES = {"en": "en-us", "ru": "ru", "cmn": "cmn-latn-pinyin"}

_IPA_VOWELS = set("aeiouyæɑɒɔəɚɛɜɝɪʊʌɐᵻøœɘɵɤɯɨʉɶ")
_DIPHTHONGS = ("eɪ", "aɪ", "ɔɪ", "aʊ", "oʊ", "əʊ", "ɪə", "eə", "ʊə")
_SYLLABIC_MARK = "\u0329"  # combining vertical line below (n̩, l̩)
_SKIP = set("ːˑ\u0303\u031a\u0361")  # length marks and combining marks that stay inside a nucleus
_RU_VOWELS = re.compile(r"[аеёиоуыэюяАЕЁИОУЫЭЮЯ]")
_PINYIN_TOKEN = re.compile(r"[a-zü:]+[1-5]?", re.IGNORECASE)


def ipa_nuclei(ipa: str) -> int:
    """Count syllabic nuclei in an IPA string (espeak-ng ``--ipa`` output)."""
    n = 0
    i = 0
    prev_vowel = False
    while i < len(ipa):
        ch = ipa[i]
        if ch in _SKIP:
            i += 1
            continue
        if ch == _SYLLABIC_MARK:
            if not prev_vowel:
                n += 1
            i += 1
            continue
        if ch in _IPA_VOWELS:
            # Greedy diphthong match (ignoring a length mark on the first element).
            j = i + 1
            while j < len(ipa) and ipa[j] in _SKIP:
                j += 1
            if j < len(ipa) and (ch + ipa[j]) in _DIPHTHONGS:
                i = j + 1
            else:
                i += 1
            n += 1
            prev_vowel = True
            continue
        prev_vowel = False
        i += 1
    return n


@functools.lru_cache(maxsize=4096)
def _ipa(text: str, voice: str) -> str:
    return run_espeak(["-q", "--ipa", "-v", voice], text=text).decode("utf-8", "replace")


def count_syllables(text: str, lang: str, voice: str | None = None) -> int:
    """Syllables espeak-ng speaks for ``text`` in ``lang`` ("en", "ru" or "cmn").

    ``voice`` only matters for English (en-us vs en-gb transcriptions differ slightly).
    """
    base = lang.split("-")[0].lower()
    if base not in SUPPORTED_LANGS:
        raise ValueError(f"count_syllables: unsupported language {lang!r} (use one of {SUPPORTED_LANGS})")
    if not text.strip():
        return 0
    if base == "ru":
        return len(_RU_VOWELS.findall(text))
    if base == "cmn":
        return len(_PINYIN_TOKEN.findall(text))
    v = (voice or LANG_VOICES["en"]).split("+")[0]
    if not v.startswith("en"):
        v = LANG_VOICES["en"]
    return ipa_nuclei(_ipa(text, v))
