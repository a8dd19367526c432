"""The int8 TFLite arousal model at run time (no TensorFlow).

Two interpreters can run the model, both imported lazily, on first load: ``tflite_runtime`` 2.14 (what
the product installs on the Pi, Python 3.11 aarch64) and ``ai_edge_litert`` (its successor; installed
where no tflite-runtime wheel exists, and by the ``dev`` extra). When both are installed,
``ai_edge_litert`` is used: it runs this int8 model through its XNNPACK delegate (~0.2 ms per window
on this x86 machine), while tflite_runtime 2.14 applies no delegate to it on x86 (~0.5 ms; the
shipped model is a plain CNN because tflite_runtime's x86 int8 depthwise convolutions are slow:
the earlier DS-CNN took ~1.7 ms there; not measured on a Pi).
``PACELIGHT_TFLITE_RUNTIME=tflite_runtime`` (or the ``runtime`` argument) selects tflite_runtime.
The two agree to within a few output quantisation steps; benchmarks/tone_eval.py reports accuracy with
the default and speed with both.

Input: one normalised log-mel window (``features.normalize_window``), quantised with the model's
input scale/zero point; output: dequantised class probabilities low/neutral/high and a 0–1 arousal score.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pacelight.errors import PacelightError

from .features import N_MELS, WINDOW_FRAMES

log = logging.getLogger(__name__)

LABELS: tuple[str, str, str] = ("low", "neutral", "high")
# Version of the shipped files (make model writes it to models/tone-metrics.json; 1.2.0: float32 FFT
# features, cheaper CNN; 1.3.0: the CNN's first conv strides 3 frames).
MODEL_VERSION = "1.3.0"
# Preferred shipped file first; any other models/tone-*.tflite is used when it is missing.
DEFAULT_MODEL_NAMES = ("tone-cnn-int8.tflite", "tone-dscnn-cc0-int8.tflite")
ENV_MODEL = "PACELIGHT_TONE_MODEL"


def model_search_dirs() -> list[Path]:
    """Where shipped models are looked for: <repo>/models (source/editable), then <prefix>/share/pacelight."""
    import sys

    here = Path(__file__).resolve()
    return [here.parents[3] / "models", Path(sys.prefix) / "share" / "pacelight" / "models"]


def default_model_path() -> Path:
    """The shipped model: $PACELIGHT_TONE_MODEL, else models/tone-cnn-int8.tflite (or another tone-*.tflite)."""
    env = os.environ.get(ENV_MODEL)
    if env:
        return Path(env)
    for d in model_search_dirs():
        for name in DEFAULT_MODEL_NAMES:
            if (d / name).is_file():
                return d / name
        found = sorted(d.glob("tone-*.tflite")) if d.is_dir() else []
        if found:
            return found[0]
    raise PacelightError("no tone model found (looked for models/tone-*.tflite); run 'make model' "
                         f"or set {ENV_MODEL}")


RUNTIMES = ("ai_edge_litert", "tflite_runtime")  # preference order (see the module docstring)
ENV_RUNTIME = "PACELIGHT_TFLITE_RUNTIME"


def _make_interpreter(path: Path, num_threads: int):
    """The first runtime that loads the model: ai_edge_litert (int8 through XNNPACK), then
    tflite_runtime (the Pi's). ``PACELIGHT_TFLITE_RUNTIME=tflite_runtime`` puts that one first;
    benchmarks/pipeline_speed.py and tone_eval.py measure both."""
    errors = []
    first = os.environ.get(ENV_RUNTIME, "")
    order = sorted(RUNTIMES, key=lambda r: r != first)
    for mod_name in (f"{r}.interpreter" for r in order):
        try:
            import importlib

            mod = importlib.import_module(mod_name)
            interp = mod.Interpreter(model_path=str(path), num_threads=num_threads)
            interp.allocate_tensors()
            return interp, mod_name.split(".")[0]
        except Exception as exc:  # ImportError, numpy ABI mismatch, unsupported op version …
            log.debug("%s could not load %s: %s", mod_name, path, exc)
            errors.append(f"{mod_name}: {exc}")
    raise PacelightError(f"cannot load tone model {path}: " + "; ".join(errors))


@dataclass(frozen=True, slots=True)
class Prediction:
    probs: tuple[float, float, float]  # low, neutral, high
    score: float  # 0..1 = P(high) + ½ P(neutral)
    label: str


def score_from_probs(p: np.ndarray) -> np.ndarray:
    """Arousal score 0..1 from (…, 3) probabilities low/neutral/high."""
    p = np.asarray(p, np.float64)
    return np.clip(p[..., 2] + 0.5 * p[..., 1], 0.0, 1.0)


class ToneModel:
    """One loaded int8 model. ``predict_window((200, 40) normalised log-mel) -> Prediction``.

    ``runtime`` forces ``"tflite_runtime"`` or ``"ai_edge_litert"`` (default: the first that works in
    :data:`RUNTIMES` order, or ``$PACELIGHT_TFLITE_RUNTIME`` first).
    """

    def __init__(self, path: str | os.PathLike | None = None, *, runtime: str | None = None,
                 num_threads: int = 1) -> None:
        self.path = Path(path) if path is not None else default_model_path()
        if not self.path.is_file():
            raise PacelightError(f"tone model not found: {self.path}")
        if runtime is None:
            self._interp, self.runtime = _make_interpreter(self.path, num_threads)
        else:
            if runtime not in RUNTIMES:
                raise ValueError(f"unknown runtime {runtime!r}")
            import importlib

            mod = importlib.import_module(f"{runtime}.interpreter")
            self._interp = mod.Interpreter(model_path=str(self.path), num_threads=num_threads)
            self._interp.allocate_tensors()
            self.runtime = runtime
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        shape = tuple(int(v) for v in inp["shape"])
        if shape[1:3] != (WINDOW_FRAMES, N_MELS) or int(out["shape"][-1]) != 3:
            raise PacelightError(f"tone model {self.path.name} has unexpected shapes {shape} -> {out['shape']}")
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_shape = shape
        self.input_dtype = np.dtype(inp["dtype"])
        self.output_dtype = np.dtype(out["dtype"])
        self.input_scale, self.input_zero_point = (float(v) for v in inp["quantization"])
        self.output_scale, self.output_zero_point = (float(v) for v in out["quantization"])
        self._qbuf: np.ndarray | None = None  # reused quantisation buffers (allocated on first use)
        self._qin: np.ndarray | None = None
        log.info("tone model %s loaded with %s", self.path.name, self.runtime)

    def name(self) -> str:
        """E.g. ``"tone-cnn-int8 1.3.0"`` (the summary's ``model.tone``)."""
        return f"{self.path.stem} {MODEL_VERSION}"

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float model input → the input tensor's dtype (int8: round(x / scale + zero point), saturated)."""
        x = np.asarray(x, np.float32)
        if self.input_dtype == np.int8 and self.input_scale > 0:
            q = np.round(x / self.input_scale + self.input_zero_point)
            return np.clip(q, -128, 127).astype(np.int8)
        return x.astype(self.input_dtype)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        if self.output_dtype == np.int8 and self.output_scale > 0:
            return (y.astype(np.float32) - self.output_zero_point) * self.output_scale
        return y.astype(np.float32)

    def _quantize_into_input(self, window: np.ndarray) -> np.ndarray:
        """:meth:`quantize_input` of a (200, 40) window with NaN → 0 and ±inf saturated, into a reused buffer."""
        if self._qbuf is None:
            self._qbuf = np.empty((WINDOW_FRAMES, N_MELS), np.float32)
            self._qin = np.empty(self._in_shape, self.input_dtype)
        q = self._qbuf
        if self.input_dtype == np.int8 and self.input_scale > 0:
            np.divide(window, np.float32(self.input_scale), out=q)
            np.add(q, np.float32(self.input_zero_point), out=q)
            np.round(q, out=q)
            np.clip(q, -128, 127, out=q)  # also saturates ±inf
            if np.isnan(np.add.reduce(q, axis=None)):  # rare; the sum of finite saturated values is finite
                q[np.isnan(q)] = np.round(self.input_zero_point)  # NaN input counts as 0.0
        else:
            np.copyto(q, np.nan_to_num(window, nan=0.0))
        self._qin.reshape(WINDOW_FRAMES, N_MELS)[...] = q  # cast to the tensor dtype, no new array
        return self._qin

    def predict_probs(self, window: np.ndarray) -> np.ndarray:
        """(200, 40) normalised log-mel → (3,) probabilities (renormalised to sum 1)."""
        window = np.asarray(window, np.float32)
        if window.shape != (WINDOW_FRAMES, N_MELS):
            raise ValueError(f"window must have shape ({WINDOW_FRAMES}, {N_MELS})")
        self._interp.set_tensor(self._in_index, self._quantize_into_input(window))
        self._interp.invoke()
        p = np.maximum(self.dequantize_output(self._interp.get_tensor(self._out_index)[0]), 0.0)
        total = float(p.sum())
        return p / total if total > 0 else np.full(3, 1.0 / 3.0, np.float32)

    def predict_window(self, window: np.ndarray) -> Prediction:
        p = self.predict_probs(window)
        lo, ne, hi = p.tolist()  # exact float64 values of the float32 probabilities
        return Prediction(probs=(lo, ne, hi), score=float(score_from_probs(p)), label=LABELS[int(p.argmax())])
