"""Train the demo lesion classifier on generated CT-like data, deterministically.

    python tools/train_demo_model.py --out data/models [--overwrite]

(``make train-demo-model`` runs exactly this.) Writes, atomically:

* ``lesion_cnn.keras`` - the model (Keras 3 format, weights and architecture);
* ``lesion_cnn.json`` - the sidecar: class labels, input spec, preprocessing, and the data
  and training settings that regenerate the held-out split;
* ``lesion_cnn.metrics.json`` - held-out accuracy, n, seed, versions, training seconds;
* ``MODEL_CARD.md`` - what it is, how it was made, what it is not.

Existing files are never replaced unless ``--overwrite`` is given (then all four are).

The data come from :func:`m1vision.synthetic.make_lesion_dataset`; the split from
:func:`m1vision.synthetic.split_indices`. Seeding does not go through m1vision: Keras'
``keras.utils.set_random_seed`` seeds Python, NumPy and TensorFlow, and
``tf.config.experimental.enable_op_determinism`` makes the TensorFlow ops deterministic, so
the same settings give the same model on the same machine and library versions (and the
same held-out accuracy, within a case or two, elsewhere).

The model is built for Grad-CAM: three conv blocks (two strided) down to a 32x32 last conv layer
(``last_conv``, 4 input pixels per cell), global average pooling and a 2-way softmax, so
the class score is a weighted sum of the last layer's maps and their gradients localise.
Its input is the 8-bit gray image as float (0-255, 128x128x1); the model rescales itself.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for _folder in (REPO, REPO / "tools"):  # run as a script from a checkout, or loaded from here
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import _training  # noqa: E402

from m1vision import _atomic  # noqa: E402
from m1vision.pipeline import Pipeline, Resize, ToGray, ToUint8  # noqa: E402
from m1vision.synthetic import LABELS, make_lesion_dataset, split_indices  # noqa: E402

MODEL_NAME = "lesion_cnn"
_GAP_SCALE = 16.0

#: The settings of the shipped model. The reproduction test runs ``train`` with these.
SETTINGS: dict = {
    "n": 4000,
    "size": 128,
    "seed": 0,
    "positive_fraction": 0.5,
    "test_fraction": 0.2,
    "epochs": 14,
    "batch_size": 16,
    "learning_rate": 0.003,
    "aux_weight": 1.0,
    "aux_pos_weight": 20.0,
    "threads": 2,
}


def output_paths(out: Path) -> dict[str, Path]:
    """The four files the script writes into ``out``."""
    out = Path(out)
    return {
        "model": out / f"{MODEL_NAME}.keras",
        "sidecar": out / f"{MODEL_NAME}.json",
        "metrics": out / f"{MODEL_NAME}.metrics.json",
        "card": out / "MODEL_CARD.md",
    }


def build_model(size: int):
    """The CNN: conv blocks -> 32x32 ``last_conv`` -> global average pooling -> softmax."""
    import keras
    from keras import layers

    def block(x, filters, name, *, strides=1, dilation=1, pool=False):
        x = layers.Conv2D(
            filters,
            3,
            strides=strides,
            dilation_rate=dilation,
            padding="same",
            use_bias=False,
            name=name,
        )(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        x = layers.ReLU(name=f"{name}_relu")(x)
        return layers.MaxPooling2D(name=f"{name}_pool")(x) if pool else x

    inputs = keras.Input((size, size, 1), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = block(x, 16, "conv1", strides=2)
    x = block(x, 32, "conv2", strides=2)
    x = block(x, 48, "conv3", dilation=2)
    x = layers.Conv2D(48, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    # A lesion covers ~1 % of the 32x32 cells: scale the averages up so the dense layer
    # starts on a useful scale (linear, so Grad-CAM is unchanged).
    x = layers.Rescaling(float(_GAP_SCALE), name="gap_scale")(x)
    outputs = layers.Dense(len(LABELS), activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=MODEL_NAME)


def _training_model(model):
    """``model`` plus an auxiliary head on ``last_conv`` that predicts the lesion mask.

    The auxiliary loss (the 32x32 fraction of lesion pixels per cell) teaches the last
    layer's maps *where* lesions are, which makes training converge in a few epochs and
    Grad-CAM localise; only ``model`` (shared layers, no auxiliary head) is saved.
    """
    import keras
    from keras import layers

    last = model.get_layer("last_conv").output
    aux = layers.Conv2D(1, 1, activation="sigmoid", name="aux_mask")(last)
    return keras.Model(model.inputs, {"probabilities": model.outputs[0], "aux_mask": aux})


def _weighted_bce(pos_weight: float):
    """Binary cross-entropy with positive cells weighted by ``pos_weight`` (they are rare)."""
    import keras
    from keras import ops

    def loss(y_true, y_pred):
        p = ops.clip(y_pred, keras.config.epsilon(), 1.0 - keras.config.epsilon())
        per_cell = -(pos_weight * y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        return ops.mean(per_cell, axis=(1, 2, 3))

    return loss


def _mask_targets(masks: np.ndarray, cells: int) -> np.ndarray:
    """Fraction of lesion pixels in each of ``cells`` x ``cells`` cells, float32 (N, c, c, 1)."""
    n, h, w = masks.shape
    fh, fw = h // cells, w // cells
    frac = masks[:, : fh * cells, : fw * cells].reshape(n, cells, fh, cells, fw).mean(axis=(2, 4))
    return frac.astype(np.float32)[..., None]


def train(settings: dict | None = None, *, verbose: int = 0):
    """Train with ``settings`` (default :data:`SETTINGS`); return ``(model, metrics)``."""
    import keras
    import tensorflow as tf

    s = dict(SETTINGS if settings is None else settings)
    _training.configure_tensorflow(s["seed"], s["threads"])
    data = make_lesion_dataset(
        s["n"], size=s["size"], seed=s["seed"], positive_fraction=s["positive_fraction"]
    )
    train_idx, test_idx = split_indices(len(data), test_fraction=s["test_fraction"], seed=s["seed"])
    x = data.images[..., None].astype(np.float32)
    y = data.labels
    model = build_model(s["size"])
    trainer = _training_model(model)
    cells = int(model.get_layer("last_conv").output.shape[1])
    trainer.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(
                s["learning_rate"],
                decay_steps=s["epochs"] * -(-len(train_idx) // s["batch_size"]),
                alpha=0.05,
            )
        ),
        loss={
            "probabilities": "sparse_categorical_crossentropy",
            "aux_mask": _weighted_bce(s["aux_pos_weight"]),
        },
        loss_weights={"probabilities": 1.0, "aux_mask": s["aux_weight"]},
        metrics={"probabilities": ["accuracy"]},
    )
    start = time.perf_counter()
    history = trainer.fit(
        x[train_idx],
        {"probabilities": y[train_idx], "aux_mask": _mask_targets(data.masks[train_idx], cells)},
        batch_size=s["batch_size"],
        epochs=s["epochs"],
        shuffle=True,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    probs = model.predict(x[test_idx], batch_size=64, verbose=0)
    predicted = probs.argmax(axis=1)
    accuracy = float((predicted == y[test_idx]).mean())
    metrics = {
        "model": f"{MODEL_NAME}.keras",
        "held_out_accuracy": round(accuracy, 4),
        "held_out_n": len(test_idx),
        "held_out_positives": int(y[test_idx].sum()),
        "train_n": len(train_idx),
        "train_accuracy_last_epoch": round(float(history.history["probabilities_accuracy"][-1]), 4),
        "seed": s["seed"],
        "settings": s,
        "training_seconds": round(seconds, 1),
        "parameters": int(model.count_params()),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "opencv": __import__("cv2").__version__,
            "pydicom": __import__("pydicom").__version__,
            "scikit-image": __import__("skimage").__version__,
        },
        "machine": f"{platform.system()} {platform.machine()}",
    }
    return model, metrics


def sidecar(settings: dict) -> dict:
    """The description stored beside the model: labels, input spec, preprocessing, data."""
    size = settings["size"]
    return {
        "name": MODEL_NAME,
        "labels": list(LABELS),
        "input": {
            "shape": [size, size, 1],
            "dtype": "float32",
            "value_range": [0, 255],
            "color": "gray",
            "layout": "NHWC",
        },
        "preprocessing": {
            "description": (
                "8-bit gray image (CT: window it first, e.g. soft tissue 40/400 HU), resized "
                f"to {size}x{size} without keeping the aspect ratio, as float32 0-255 with a "
                "channel axis; the model rescales to 0-1 itself."
            ),
            # m1vision.pipeline.Pipeline.from_dict(sidecar["preprocessing"]["pipeline"])
            "pipeline": Pipeline(
                [ToGray(), ToUint8(), Resize(size=(size, size), keep_aspect=False)]
            ).to_dict(),
        },
        "grad_cam_layer": "last_conv",
        "data": {
            "generator": "m1vision.synthetic.make_lesion_dataset",
            "split": "m1vision.synthetic.split_indices",
            "n": settings["n"],
            "size": size,
            "seed": settings["seed"],
            "positive_fraction": settings["positive_fraction"],
            "test_fraction": settings["test_fraction"],
        },
    }


def model_card(metrics: dict) -> str:
    """The MODEL_CARD.md text for ``metrics``."""
    s = metrics["settings"]
    v = metrics["versions"]
    return f"""# Model card: {MODEL_NAME} (m1vision demo lesion classifier)

**Research and demonstration use only. Not a medical device; not for diagnosis.**

## What it is
A small convolutional network ({metrics["parameters"]:,} parameters) that tells whether a
{s["size"]}x{s["size"]} gray CT-like image holds a generated round/elliptical "lesion".
Classes (index: label): 0: "{LABELS[0]}", 1: "{LABELS[1]}". Layers: 3x3 convolutions with
batch normalisation (two of stride 2, one dilated) down to a 32x32 `last_conv` layer, global
average pooling, a 2-way softmax - made for Grad-CAM (`m1vision.explain.grad_cam`), whose
maps localise the lesion.

Files: `{MODEL_NAME}.keras` (model), `{MODEL_NAME}.json` (labels, input spec, preprocessing,
data settings), `{MODEL_NAME}.metrics.json` (figures below, versions). The demo organ
segmenter beside it, `phantom_seg.keras` with `phantom_seg.json`, `phantom_seg.metrics.json`
and its own card `phantom_seg.md`, is made by `make train-demo-segmenter`.

## Input and preprocessing
One channel, float32 values 0-255 (an 8-bit gray image), shape ({s["size"]}, {s["size"]}, 1);
the model divides by 255 itself. Window CT first (soft tissue 40/400 HU was used for the
body slice, 40/200 for the head), make it 8-bit, resize to {s["size"]}x{s["size"]}.

## Data
Generated by `m1vision.synthetic.make_lesion_dataset(n={s["n"]}, size={s["size"]},
seed={s["seed"]}, positive_fraction={s["positive_fraction"]})`: the pydicom sample CT slices
(`CT_small.dcm`, `693_J2KI.dcm`) and the Shepp-Logan phantom, flipped, rotated, cropped,
window- and gamma-jittered, blurred and noised; half get one soft-edged elliptical lesion
(semi-axes 6-14 px, contrast 50-110 gray levels, brighter or darker) inside the soft tissue.
No patient data beyond those public sample slices.

## Training
Cross-entropy on the class, plus an auxiliary loss used only while training: a 1x1
convolution on `last_conv` predicts the fraction of lesion pixels in each 32x32 cell
(binary cross-entropy, lesion cells weighted {s["aux_pos_weight"]:g}x, loss weight
{s["aux_weight"]:g}). It teaches the last layer's maps where lesions are, so training converges
in a few epochs and Grad-CAM localises; the saved model has no auxiliary head.

## Split and evaluation
`m1vision.synthetic.split_indices(n, test_fraction={s["test_fraction"]}, seed={s["seed"]})`:
{metrics["train_n"]} training cases, {metrics["held_out_n"]} held-out cases
({metrics["held_out_positives"]} with a lesion), generated with the same seed but never
trained on.

| figure | value |
|---|---|
| held-out accuracy | {metrics["held_out_accuracy"]:.4f} (n = {metrics["held_out_n"]}) |
| training accuracy, last epoch | {metrics["train_accuracy_last_epoch"]:.4f} |
| epochs, batch size | {s["epochs"]}, {s["batch_size"]} |
| Adam learning rate (cosine decay to 5 %) | {s["learning_rate"]} |
| seed | {s["seed"]} |
| training time | {metrics["training_seconds"]} s, {s["threads"]} threads, {metrics["machine"]} |

Versions: Python {v["python"]}, TensorFlow {v["tensorflow"]}, Keras {v["keras"]},
NumPy {v["numpy"]}, OpenCV {v["opencv"]}, pydicom {v["pydicom"]}, scikit-image {v["scikit-image"]}.

## How to reproduce
    make train-demo-model        # python tools/train_demo_model.py --out data/models
    python tools/train_demo_model.py --out retrained/ --overwrite   # elsewhere, to compare

Seeding: `keras.utils.set_random_seed({s["seed"]})` and
`tf.config.experimental.enable_op_determinism()`. The same versions on the same kind of CPU
give the same weights; elsewhere the held-out accuracy matches within about 0.01
(`tests/test_demo_model.py` retrains and checks that).

## Intended use
Demonstrating and testing m1vision's inference, batch prediction, Grad-CAM and drawing code
on CPU, offline, in seconds.

## Limitations
- Trained only on generated lesions on three base images; it has learnt "a blob of odd
  contrast in the soft tissue", not any disease. Real findings, other anatomy, other
  modalities and other windows are out of its distribution; its probabilities on them mean
  nothing.
- Small or low-contrast lesions on noisy images are its errors.
- Not validated clinically in any way. **Research use only, not for diagnosis.**
"""


def write_outputs(model, metrics: dict, out: Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Write the model, sidecar, metrics and model card into ``out`` atomically.

    Refuses (``OutputExistsError``) before writing anything if any of them exists and
    ``overwrite`` is false.
    """
    paths = output_paths(out)
    if not overwrite:
        _training.refuse_existing(paths, out)
    with _atomic.atomic_path(paths["model"], overwrite=overwrite) as tmp:
        model.save(tmp)
    _atomic.atomic_write_json(paths["sidecar"], sidecar(metrics["settings"]), overwrite=overwrite)
    _atomic.atomic_write_json(paths["metrics"], metrics, overwrite=overwrite)
    _atomic.atomic_write_text(paths["card"], model_card(metrics), overwrite=overwrite)
    return paths


def _summary(metrics: dict) -> str:
    return f"held-out accuracy {metrics['held_out_accuracy']:.4f} (n={metrics['held_out_n']})"


def main(argv: list[str] | None = None) -> int:
    return _training.main(argv, __doc__, output_paths, train, write_outputs, _summary)


if __name__ == "__main__":
    sys.exit(main())
