"""Training for the pacelight tone (arousal) model — the ``train`` extra; never imported at run time.

``python -m pacelight_train.build`` (``make model``) prepares data from the shared corpora, trains,
quantizes to int8 and writes ``models/tone-*.tflite``. Only :mod:`pacelight_train.build` imports
TensorFlow; :mod:`pacelight_train.augment` and :mod:`pacelight_train.data` are numpy/scipy only (the
benchmark reuses them from the runtime venv).
"""
