"""Tone: vocal arousal (low | neutral | high + a 0–1 score) per party from an int8 TFLite model.

Acoustic arousal only — no valence or emotion claims. ``features`` (numpy log-mel, shared with
training), ``model`` (TFLite runtime wrapper, lazy imports), ``tracker`` (per-party streaming tracker).
"""
