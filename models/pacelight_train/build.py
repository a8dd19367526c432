"""Train, quantize and ship the tone (arousal) model: ``python -m pacelight_train.build`` (``make model``).

Steps (fixed seeds; features cached under models/build/cache):
1. Manifest (EmoDB + RAVDESS, ``excluded`` skipped, the manifest's speaker-independent ``split``).
2. Log-mel windows (2 s, 1 s hop) of every training clip in 5 channel variants (clean, telephone+μ-law,
   noise+gain/clipping, speed/pitch, all), plus clean and telephone copies of val/test clips.
3. One model (``--arch``: ``cnn``, plain convolutions, or ``dscnn``) per training set: ``emodb`` (CC0), ``ravdess`` (CC BY-NC-SA, for cross-corpus only),
   ``both`` (CC BY-NC-SA). Best epoch by clip-level val UAR.
4. Full-integer int8 post-training quantization (representative set = training windows),
   float and int8 metrics on the test speakers → models/build/metrics-<arch>.json.
5. Copy the shipped (architecture, variant) pairs to models/ (``SHIP``). ``make model`` runs the build twice:
   ``--arch cnn`` (all variants; ships the default tone-cnn-int8) and ``--arch dscnn --variants emodb``
   (ships the commercially clean tone-dscnn-cc0-int8, which stays a DS-CNN: the CNN trained on EmoDB
   alone ranks worse, ρ 0.60 vs 0.71).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from pacelight.tone.model import MODEL_VERSION  # the version the run time reports: one definition

from . import data as D
from .metrics import clip_probs, grouped_summary, summarize

log = logging.getLogger("pacelight_train.build")

MODELS_DIR = Path(__file__).resolve().parents[1]
BUILD_DIR = MODELS_DIR / "build"
SEED = 1234
TRAIN_KINDS = (0, 1, 2, 3, 4)
VARIANTS = {"emodb": ("emodb",), "ravdess": ("ravdess",), "both": ("emodb", "ravdess")}
SHIP = {"cnn": {"both": "tone-cnn-int8.tflite"}, "dscnn": {"emodb": "tone-dscnn-cc0-int8.tflite"}}


def build_model(tf, n_frames: int, n_mels: int, width: int = 64):
    L = tf.keras.layers
    inp = L.Input((n_frames, n_mels, 1), name="logmel")
    x = _bn_relu(L, L.Conv2D(32, (10, 4), strides=(2, 2), padding="same", use_bias=False)(inp))
    for i, stride in enumerate(((2, 2), (2, 1), (1, 1), (1, 1))):
        x = _bn_relu(L, L.DepthwiseConv2D((3, 3), strides=stride, padding="same", use_bias=False, name=f"dw{i}")(x))
        x = _bn_relu(L, L.Conv2D(width, (1, 1), use_bias=False, name=f"pw{i}")(x))
    return tf.keras.Model(inp, _arousal_head(L, x), name="tone_dscnn")


def _bn_relu(L, x):
    x = L.BatchNormalization(momentum=0.9)(x)
    return L.ReLU()(x)


def _arousal_head(L, x):
    """Global average pool → dropout → 3-way softmax, shared by every architecture."""
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.3)(x)
    return L.Dense(3, activation="softmax", name="arousal")(x)


# (channels, kernel, stride (time, freq)); 1.3.0: the first conv strides 3 frames (30 ms) in time
# (1.1.0: 2, ~14 M MACs; 1.2.0: 4, ~7 M MACs but its scores no longer separated the rapport calm-cue
# scenarios: 8/15 high/high calls cued at energy_high 0.65, no threshold reaching 14/15 with ≤ 2/45
# false cues); stride 3: ~9.5 M MACs, same 66,755 parameters.
CNN_LAYERS = ((32, (10, 4), (3, 2)), (32, (3, 3), (2, 2)), (64, (3, 3), (2, 2)), (64, (3, 3), (1, 1)))


def build_cnn(tf, n_frames: int, n_mels: int, layers=CNN_LAYERS):
    """Plain CNN (the default): 10×4 conv /3,2 (32) → 3×3 conv /2 (32) → 3×3 conv /2 (64) → 3×3 conv (64)
    → global average pool → dense 3; 66,755 parameters, ~9.5 M MACs per window. Only CONV_2D ops, which
    tflite_runtime 2.14 runs with optimised int8 kernels on x86 (its int8 depthwise convolutions, which
    the DS-CNN needs, run on portable kernels there: ~0.35 vs ~1.7 ms per window)."""
    L = tf.keras.layers
    inp = L.Input((n_frames, n_mels, 1), name="logmel")
    x = inp
    for i, (ch, k, stride) in enumerate(layers):
        x = _bn_relu(L, L.Conv2D(ch, k, strides=stride, padding="same", use_bias=False, name=f"conv{i}")(x))
    return tf.keras.Model(inp, _arousal_head(L, x), name="tone_cnn")


# Selectable architectures (--arch); file names carry the architecture.
ARCHS = {"cnn": build_cnn, "dscnn": build_model}


def spec_augment(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random frequency (≤6 bands) and time (≤20 frames) masks, set to the patch floor; random shift."""
    X = X.astype(np.float32).copy()
    n, t, f = X.shape
    floor = X.min(axis=(1, 2))
    f0 = rng.integers(0, f, n)
    fw = rng.integers(0, 7, n)
    t0 = rng.integers(0, t, n)
    tw = rng.integers(0, 21, n)
    fi = np.arange(f)[None, :]
    ti = np.arange(t)[None, :]
    fmask = (fi >= f0[:, None]) & (fi < (f0 + fw)[:, None])
    tmask = (ti >= t0[:, None]) & (ti < (t0 + tw)[:, None])
    mask = fmask[:, None, :] | tmask[:, :, None]
    X = np.where(mask, floor[:, None, None], X)
    shift = rng.integers(-30, 31)
    return np.roll(X, int(shift), axis=1)


def to_tflite_int8(tf, model, rep: np.ndarray) -> bytes:
    def representative():
        for i in range(len(rep)):
            yield [rep[i:i + 1, :, :, None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def tflite_predict(tf, model_bytes: bytes, X: np.ndarray) -> np.ndarray:
    interp = tf.lite.Interpreter(model_content=model_bytes)
    interp.allocate_tensors()
    i_d, o_d = interp.get_input_details()[0], interp.get_output_details()[0]
    si, zi = i_d["quantization"]
    so, zo = o_d["quantization"]
    out = np.zeros((len(X), 3), np.float32)
    for k in range(len(X)):
        x = X[k:k + 1, :, :, None].astype(np.float32)
        if i_d["dtype"] == np.int8:
            x = np.clip(np.round(x / si + zi), -128, 127).astype(np.int8)
        interp.set_tensor(i_d["index"], x)
        interp.invoke()
        y = interp.get_tensor(o_d["index"])[0]
        out[k] = (y.astype(np.float32) - zo) * so if o_d["dtype"] == np.int8 else y
    return out


def evaluate(predict, sets: dict, clips_by_set: dict) -> dict:
    """Clip-level metrics per test set, overall / per corpus / per sex."""
    res = {}
    for name, arr in sets.items():
        clips = clips_by_set[name]
        res[name] = grouped_summary(clips, clip_probs(predict(arr["X"]), arr["clip"], len(clips)))
    return res


class _Bar:
    """Epoch progress bar + clip-level val UAR model selection."""

    def __init__(self, tf, val, val_clips, epochs, label):
        from tqdm import tqdm

        self.tf, self.val, self.val_clips = tf, val, val_clips
        self.best = (-1.0, None, -1)
        self.bar = tqdm(total=epochs, desc=f"train {label}", unit="epoch")

    def callback(self):
        outer = self

        class CB(self.tf.keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                p = self.model.predict(outer.val["X"][..., None].astype(np.float32), verbose=0, batch_size=256)
                probs = clip_probs(p, outer.val["clip"], len(outer.val_clips))
                m = summarize(probs, np.array([c.label for c in outer.val_clips]))
                score = m["uar"] + 0.1 * m["spearman"]
                if score > outer.best[0]:
                    outer.best = (score, [w.copy() for w in self.model.get_weights()], epoch)
                outer.bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}", val_uar=f"{m['uar']:.3f}",
                                      best_ep=outer.best[2])
                outer.bar.update(1)

        return CB()


def write_shipped_metrics(all_metrics: dict, arch: str) -> None:
    """models/tone-metrics.json: training-time float/int8 test metrics of every variant of ``arch``
    (other architectures' entries are kept; small, committed)."""
    dst = MODELS_DIR / "tone-metrics.json"
    old = json.loads(dst.read_text()) if dst.exists() else {}
    archs = old.get("archs", {})
    archs[arch] = {v: {k: m[k] for k in ("corpora", "params", "best_epoch", "epochs", "int8_bytes", "float", "int8")}
                   for v, m in all_metrics.items()}
    shipped = {f"{a}/{v}": name for a, names in SHIP.items() for v, name in names.items()}
    tmp = dst.with_suffix(".tmp")
    tmp.write_text(json.dumps({"model_version": MODEL_VERSION, "seed": SEED, "shipped": shipped,
                               "archs": archs}, indent=1) + "\n")
    os.replace(tmp, dst)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pacelight_train.build", description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="emodb,ravdess,both", help="comma-separated: emodb,ravdess,both")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--arch", default="cnn", choices=sorted(ARCHS), help="model architecture")
    ap.add_argument("--no-ship", action="store_true", help="do not copy models into models/")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t_start = time.monotonic()

    clips = D.load_manifest()
    by_split = {s: [c for c in clips if c.split == s] for s in ("train", "val", "test")}
    cache = BUILD_DIR / "cache"
    train = D.build_arrays(by_split["train"], TRAIN_KINDS, SEED, cache, "train")
    val = D.build_arrays(by_split["val"], (0,), SEED + 1, cache, "val")
    test_sets = {"clean": D.build_arrays(by_split["test"], (0,), SEED + 2, cache, "test"),
                 "telephone": D.build_arrays(by_split["test"], (5,), SEED + 3, cache, "test-tel")}
    log.info("features ready: train %s windows, val %d, test %d (%.0f s)", train["X"].shape, len(val["y"]),
             len(test_sets["clean"]["y"]), time.monotonic() - t_start)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    metrics_path = BUILD_DIR / f"metrics-{args.arch}.json"
    all_metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    train_corpus = np.array([by_split["train"][i].corpus for i in train["clip"]])
    val_corpus = np.array([c.corpus for c in by_split["val"]])

    for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
        corpora = VARIANTS[variant]
        tf.keras.backend.clear_session()  # same layer/tensor names whatever ran before → same bytes
        tf.keras.utils.set_random_seed(SEED)
        tf.config.experimental.enable_op_determinism()
        rng = np.random.default_rng(SEED)
        sel = np.isin(train_corpus, corpora)
        X, y = train["X"][sel], train["y"][sel]
        vsel_clips = np.flatnonzero(np.isin(val_corpus, corpora))
        remap = -np.ones(len(by_split["val"]), np.int64)
        remap[vsel_clips] = np.arange(len(vsel_clips))
        wsel = remap[val["clip"]] >= 0
        v = {"X": val["X"][wsel], "clip": remap[val["clip"][wsel]]}
        v_clips = [by_split["val"][i] for i in vsel_clips]

        counts = np.bincount(y, minlength=3)
        cw = {k: float(len(y) / (3 * max(counts[k], 1))) for k in range(3)}
        model = ARCHS[args.arch](tf, X.shape[1], X.shape[2])
        steps = args.epochs * int(np.ceil(len(y) / 64))
        lr = tf.keras.optimizers.schedules.CosineDecay(3e-3, steps, alpha=0.05)
        model.compile(optimizer=tf.keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
        bar = _Bar(tf, v, v_clips, args.epochs, variant)
        cb = bar.callback()
        for epoch in range(args.epochs):
            Xe = spec_augment(X, rng)[..., None]
            model.fit(Xe, y, batch_size=64, epochs=epoch + 1, initial_epoch=epoch, class_weight=cw,
                      shuffle=True, verbose=0, callbacks=[cb])
        bar.bar.close()
        model.set_weights(bar.best[1])
        log.info("%s: best epoch %d, %d params", variant, bar.best[2] + 1, model.count_params())

        rep_idx = rng.choice(len(X), size=min(400, len(X)), replace=False)
        tfl = to_tflite_int8(tf, model, X[rep_idx].astype(np.float32))
        out = BUILD_DIR / f"tone-{args.arch}-{variant}-int8.tflite"
        out.write_bytes(tfl)
        float_tfl = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        (BUILD_DIR / f"tone-{args.arch}-{variant}-float.tflite").write_bytes(float_tfl)

        clips_by_set = {k: by_split["test"] for k in test_sets}
        m_float = evaluate(lambda A, mdl=model: mdl.predict(A[..., None].astype(np.float32), verbose=0, batch_size=256),
                           test_sets, clips_by_set)
        m_int8 = evaluate(lambda A, b=tfl: tflite_predict(tf, b, A), test_sets, clips_by_set)
        all_metrics[variant] = {"corpora": list(corpora), "params": int(model.count_params()),
                                "best_epoch": bar.best[2] + 1, "epochs": args.epochs,
                                "int8_bytes": len(tfl), "float": m_float, "int8": m_int8}
        log.info("%s test clean: float %s | int8 %s", variant, m_float["clean"]["all"], m_int8["clean"]["all"])
        tmp = metrics_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(all_metrics, indent=1))
        os.replace(tmp, metrics_path)
        if not args.no_ship and variant in SHIP.get(args.arch, {}):
            dst = MODELS_DIR / SHIP[args.arch][variant]
            tmpm = dst.with_suffix(".tmp")
            shutil.copyfile(out, tmpm)
            os.replace(tmpm, dst)
            log.info("shipped %s (%d bytes)", dst.name, len(tfl))
    if not args.no_ship:
        write_shipped_metrics(all_metrics, args.arch)
    log.info("done in %.1f min", (time.monotonic() - t_start) / 60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
