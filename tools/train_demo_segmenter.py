"""Train the demo organ segmenter (a small 2-D U-Net) on generated CT phantoms, deterministically.

    python tools/train_demo_segmenter.py --out data/models [--overwrite]

(``make train-demo-segmenter`` runs exactly this.) Writes, atomically:

* ``phantom_seg.keras`` - the model (Keras 3 format): one axial slice in, per-pixel softmax
  over the label values 0-6 of :data:`m1vision.synthetic.PHANTOM_LABELS` out;
* ``phantom_seg.json`` - the card as data: its ``segmentation`` section (input spacing,
  intensity preparation, input/output layout, labels) is what a segmenter applies, see
  ``docs/segmentation-model.md``; ``data`` and ``training`` regenerate the training and
  held-out phantoms;
* ``phantom_seg.metrics.json`` - Dice per organ on held-out phantoms, seeds, versions, time;
* ``phantom_seg.md`` - the model card in words.

Existing files are never replaced unless ``--overwrite`` is given (then all four are).

The data come from :func:`m1vision.synthetic.ct_phantom` and
:func:`m1vision.synthetic.ct_phantom_labels` of random shapes and spacings (drawn from each
case's seed), resampled in-plane to the card's spacing with :func:`m1vision.volume.resample`.
Seeding: ``keras.utils.set_random_seed`` and
``tf.config.experimental.enable_op_determinism``, as for the demo classifier.
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
from m1vision.synthetic import PHANTOM_LABELS, ct_phantom, ct_phantom_labels  # noqa: E402

MODEL_NAME = "phantom_seg"

#: In-plane pixel size (row, col) mm the model works at; slices are resampled to it.
SPACING = (1.25, 1.25)
#: The card's CT window (level, width) in HU: the model's input is this window clipped and
#: scaled to [0, 1] (what ``m1vision.inference.Segmenter`` applies).
WINDOW = (0.0, 2000.0)
#: A soft-tissue window (level, width) HU the model derives from its input itself, as a
#: second channel (its first layers), so the 20 HU lesion stands out.
SOFT_WINDOW = (60.0, 160.0)
#: The value (HU) that pads training tiles: air.
PAD_VALUE = -1000.0
#: Height and width of a slice must be multiples of this (three 2x poolings).
MULTIPLE = 8
FILTERS = (8, 16, 32, 64)
#: The label value of the liver lesion (small: training draws its slices more often).
LESION = next(v for v, e in PHANTOM_LABELS.items() if e["name"] == "liver_lesion")

#: The settings of the shipped model. The card records them; the tests regenerate from them.
SETTINGS: dict = {
    "train_cases": 96,
    "train_seed0": 0,
    "slices_per_case": 16,
    "lesion_fraction": 0.5,
    "tile": 128,
    "fov_mm": [120.0, 320.0],
    "pixel_mm": [0.6, 1.6],
    "anisotropy": [0.85, 1.15],
    "depth": [12, 48],
    "z_mm": [1.0, 5.0],
    "held_out_cases": 4,
    "held_out_seed0": 10_000,
    "epochs": 12,
    "batch_size": 16,
    "learning_rate": 0.003,
    "dice_weight": 1.0,
    "lesion_ce_weight": 3.0,
    "seed": 0,
    "threads": 2,
}


def output_paths(out: Path) -> dict[str, Path]:
    """The four files the script writes into ``out``."""
    out = Path(out)
    return {
        "model": out / f"{MODEL_NAME}.keras",
        "card_json": out / f"{MODEL_NAME}.json",
        "metrics": out / f"{MODEL_NAME}.metrics.json",
        "card": out / f"{MODEL_NAME}.md",
    }


# --------------------------------------------------------------------------- data


def case_geometry(seed: int, settings: dict) -> tuple[tuple[int, int, int], tuple[float, ...]]:
    """The (Z, H, W) shape and (z, row, col) spacing of generated case ``seed``.

    The field of view, pixel size, row/column anisotropy and depth are drawn from the ranges
    of ``settings`` with ``numpy.random.default_rng([seed, 21])``.
    """
    rng = np.random.default_rng([seed, 21])
    fov = rng.uniform(*settings["fov_mm"])
    row = rng.uniform(*settings["pixel_mm"])
    col = row * rng.uniform(*settings["anisotropy"])
    fov_w = fov * rng.uniform(*settings["anisotropy"])
    nz = int(rng.integers(settings["depth"][0], settings["depth"][1] + 1))
    dz = float(rng.uniform(*settings["z_mm"]))
    shape = (nz, max(32, round(fov / row)), max(32, round(fov_w / col)))
    return shape, (round(dz, 4), round(row, 4), round(col, 4))


def phantom_case(shape, spacing, seed: int):
    """``(image, labels)``: :func:`ct_phantom` as a CT ``MedicalImage`` on the grid of
    :func:`ct_phantom_labels` of the same shape, seed and spacing, and those labels."""
    from m1vision.io import MedicalImage

    labels = ct_phantom_labels(shape, seed=seed, spacing=spacing)
    image = MedicalImage(
        ct_phantom(shape, seed=seed),
        spacing=labels.spacing,
        modality="CT",
        metadata={"layout": "volume", "affine": labels.metadata["affine"]},
    )
    return image, labels


def prepare(hu: np.ndarray, window=WINDOW) -> np.ndarray:
    """HU (..., H, W) -> float32 (..., H, W, 1): the window (level, width) clipped to [0, 1]."""
    level, width = window
    low = level - width / 2.0
    return ((np.clip(np.asarray(hu, np.float32), low, low + width) - low) / width)[..., None]


def _pad_to(plane: np.ndarray, size: int, value) -> np.ndarray:
    """Pad a (Z, H, W) stack evenly to at least ``size`` x ``size``."""
    _, h, w = plane.shape
    ph, pw = max(0, size - h), max(0, size - w)
    pad = ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
    return np.pad(plane, pad, constant_values=value)


def training_tiles(settings: dict, *, first: int, count: int, per_case: int):
    """``(x, y)``: tiles of ``tile`` x ``tile`` pixels at :data:`SPACING` from ``count`` cases.

    Case ``first + i`` is generated with :func:`case_geometry` and :func:`phantom_case`,
    resampled in-plane (image linear, labels nearest), padded with air where smaller than a
    tile and cropped at a seeded random place where larger; ``per_case`` slices are drawn,
    up to ``lesion_fraction`` of them among the slices holding the liver lesion (a few
    percent of a volume otherwise), whose tiles are placed so that they hold the lesion.
    """
    from m1vision.volume import resample

    size = settings["tile"]
    xs, ys = [], []
    for seed in range(first, first + count):
        shape, spacing = case_geometry(seed, settings)
        image, labels = phantom_case(shape, spacing, seed)
        target = (spacing[0], *SPACING)
        hu = resample(image, spacing=target).pixels
        lab = resample(labels, spacing=target, interpolation="nearest").pixels
        rng = np.random.default_rng([seed, 22])
        n = min(per_case, len(hu))
        with_lesion = np.flatnonzero((lab == LESION).any(axis=(1, 2)))
        n_lesion = min(len(with_lesion), round(n * settings["lesion_fraction"]))
        ks = rng.choice(with_lesion, size=n_lesion, replace=False)
        rest = np.setdiff1d(np.arange(len(hu)), ks)
        ks = np.sort(np.concatenate([ks, rng.choice(rest, size=n - n_lesion, replace=False)]))
        hu = _pad_to(hu[ks], size, PAD_VALUE)
        lab = _pad_to(lab[ks], size, 0)
        margin = size // 8
        for k in range(len(hu)):
            lo, hi = [0, 0], [hu.shape[1] - size, hu.shape[2] - size]
            where = np.argwhere(lab[k] == LESION)
            if len(where):  # keep the lesion's centre inside the tile
                centre = where.mean(axis=0).round().astype(int)
                lo = [max(0, int(v) - size + margin) for v in centre]
                hi = [
                    max(a, min(b, int(v) - margin)) for a, b, v in zip(lo, hi, centre, strict=True)
                ]
            r = int(rng.integers(lo[0], hi[0] + 1))
            c = int(rng.integers(lo[1], hi[1] + 1))
            xs.append(hu[k, r : r + size, c : c + size])
            ys.append(lab[k, r : r + size, c : c + size])
    return prepare(np.stack(xs)), np.stack(ys).astype(np.int32)


# --------------------------------------------------------------------------- model


def build_model(classes: int = len(PHANTOM_LABELS) + 1):
    """A small 2-D U-Net on one channel (:data:`WINDOW` scaled to [0, 1]).

    Its first layers add :data:`SOFT_WINDOW` as a second channel (a fixed rescaling clipped
    to [0, 1]); then four levels of (conv 3x3, batch norm, relu) x 2, max pooling down,
    transposed convolutions up with skip connections, a 1x1 softmax over ``classes``.
    Any height and width that are multiples of :data:`MULTIPLE`.
    """
    import keras
    from keras import layers

    def block(x, filters, name):
        for i in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
            x = layers.ReLU(name=f"{name}_relu{i}")(x)
        return x

    inputs = keras.Input((None, None, 1), name="image")
    # input u = (HU - low) / width of WINDOW; the soft window is (HU - low_s) / width_s
    (level, width), (s_level, s_width) = WINDOW, SOFT_WINDOW
    low, s_low = level - width / 2.0, s_level - s_width / 2.0
    soft = layers.Rescaling(width / s_width, offset=(low - s_low) / s_width, name="soft_window")(
        inputs
    )
    soft = layers.ReLU(max_value=1.0, name="soft_clip")(soft)
    x = layers.Concatenate(name="windows")([inputs, soft])
    skips = []
    for level, filters in enumerate(FILTERS[:-1]):
        x = block(x, filters, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    x = block(x, FILTERS[-1], "bottom")
    for level in reversed(range(len(FILTERS) - 1)):
        x = layers.Conv2DTranspose(FILTERS[level], 2, strides=2, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = block(x, FILTERS[level], f"dec{level}")
    outputs = layers.Conv2D(classes, 1, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=MODEL_NAME)


def dice_ce_loss(classes: int, dice_weight: float, class_weights=None):
    """Cross-entropy (each pixel weighted by its class's ``class_weights``) plus
    ``dice_weight`` x (1 - soft Dice averaged over the foreground classes present in the
    batch)."""
    from keras import ops

    weights = np.ones(classes, np.float32) if class_weights is None else class_weights
    weights = np.asarray(weights, np.float32)

    def loss(y_true, y_pred):
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:3]), "int32")
        onehot = ops.one_hot(y_true, classes)
        p = ops.clip(y_pred, 1e-7, 1.0)
        ce = -ops.mean(ops.sum(onehot * ops.log(p) * weights, axis=-1))
        inter = ops.sum(onehot * y_pred, axis=(0, 1, 2))
        total = ops.sum(onehot + y_pred, axis=(0, 1, 2))
        dice = (2.0 * inter + 1.0) / (total + 1.0)
        present = ops.cast(ops.sum(onehot, axis=(0, 1, 2)) > 0, "float32")[1:]
        mean_dice = ops.sum(dice[1:] * present) / ops.maximum(ops.sum(present), 1.0)
        return ce + dice_weight * (1.0 - mean_dice)

    return loss


# --------------------------------------------------------------------------- inference


def segment(model, image, card: dict):
    """Segment a CT ``MedicalImage`` as the card says, with :class:`m1vision.inference.Segmenter`
    (per slice, resampled in-plane to the card's spacing and back): a label map on its grid."""
    from m1vision.inference import Segmenter

    return Segmenter(model, card=card, device="cpu", batch_size=8).segment(image)


def dice_per_organ(model, card: dict, cases) -> dict:
    """Mean Dice per organ name (and ``"mean"``) over ``cases``: ``(shape, spacing, seed)``."""
    from m1vision.labels import compare_labels

    values = sorted(int(v) for v in card["segmentation"]["labels"] if int(v) != 0)
    names = {int(k): v["name"] for k, v in card["segmentation"]["labels"].items()}
    scores: dict[str, list[float]] = {names[v]: [] for v in values}
    for shape, spacing, seed in cases:
        image, labels = phantom_case(tuple(shape), tuple(spacing), seed)
        predicted = segment(model, image, card)
        table = compare_labels(labels, predicted, values=values)
        for row in table.rows:
            scores[names[int(row["label"])]].append(float(row["dice"]))
    result = {name: round(float(np.mean(v)), 4) for name, v in scores.items()}
    result["mean"] = round(float(np.mean(list(result.values()))), 4)
    return result


# --------------------------------------------------------------------------- card


#: Phantoms of other sizes and spacings than any training case: (shape, spacing, seed).
OTHER_CASES = (((48, 160, 160), (2.5, 1.0, 1.0), 1234),)


def held_out_cases(settings: dict) -> list:
    """The held-out cases: seeds after the training seeds, geometry drawn like training's."""
    first = settings["held_out_seed0"]
    return [
        (*case_geometry(seed, settings), seed)
        for seed in range(first, first + settings["held_out_cases"])
    ]


def card(settings: dict) -> dict:
    """The JSON card: what the model takes and gives (``segmentation``), and its data."""
    labels = {"0": {"name": "background", "color": [0, 0, 0]}}
    labels.update({str(k): dict(v) for k, v in PHANTOM_LABELS.items()})
    return {
        "name": MODEL_NAME,
        "task": "segmentation",
        # what m1vision.inference.Segmenter reads (docs/segmentation-model.md)
        "segmentation": {
            "mode": "slices",
            "spacing": list(SPACING),
            "divisible_by": MULTIPLE,
            "channels": 1,
            "intensity": {"window": list(WINDOW)},
            "labels": labels,
        },
        "input": {
            "shape": [None, None, 1],
            "layout": "NHWC",
            "dtype": "float32",
            "slice_axis": 0,
            "description": (
                "axial slices (axis 0 of the package's (Z, H, W) layout) in HU, resampled "
                f"in-plane to {SPACING[0]} x {SPACING[1]} mm, the window level/width "
                f"{WINDOW[0]:g}/{WINDOW[1]:g} HU clipped and scaled to [0, 1], any height and "
                f"width that are multiples of {MULTIPLE}. The model adds the narrow soft-tissue "
                f"window {SOFT_WINDOW[0]:g}/{SOFT_WINDOW[1]:g} HU itself."
            ),
            "trained_on_tiles": [settings["tile"], settings["tile"]],
            "training_pad_value_hu": PAD_VALUE,
        },
        "output": {
            "kind": "softmax",
            "classes": len(PHANTOM_LABELS) + 1,
            "class_is_label_value": True,
        },
        "data": {
            "generator": "m1vision.synthetic.ct_phantom",
            "labels": "m1vision.synthetic.ct_phantom_labels",
            "geometry": "tools/train_demo_segmenter.py case_geometry(seed, settings)",
            "train_seeds": [
                settings["train_seed0"],
                settings["train_seed0"] + settings["train_cases"],
            ],
            "held_out_seeds": [
                settings["held_out_seed0"],
                settings["held_out_seed0"] + settings["held_out_cases"],
            ],
            "held_out": [[list(s), list(sp), seed] for s, sp, seed in held_out_cases(settings)],
            "other": [[list(s), list(sp), seed] for s, sp, seed in OTHER_CASES],
        },
        "training": dict(settings),
    }


def fit(settings: dict, *, verbose: int = 0):
    """Seed, generate the training tiles and train the U-Net with ``settings``.

    Returns ``(model, facts)``: ``facts`` holds ``train_tiles``, the ``loss`` of every epoch,
    ``data_seconds`` and ``training_seconds``. :func:`train` evaluates what this trains; the
    determinism test runs this twice on a small budget.
    """
    import keras

    s = dict(settings)
    _training.configure_tensorflow(s["seed"], s["threads"])
    start = time.perf_counter()
    x, y = training_tiles(
        s, first=s["train_seed0"], count=s["train_cases"], per_case=s["slices_per_case"]
    )
    data_seconds = time.perf_counter() - start
    model = build_model()
    classes = len(PHANTOM_LABELS) + 1
    steps = s["epochs"] * -(-len(x) // s["batch_size"])
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(s["learning_rate"], steps, alpha=0.05)
        ),
        loss=dice_ce_loss(
            classes,
            s["dice_weight"],
            [s["lesion_ce_weight"] if c == LESION else 1.0 for c in range(classes)],
        ),
    )
    start = time.perf_counter()
    history = model.fit(
        x, y, batch_size=s["batch_size"], epochs=s["epochs"], shuffle=True, verbose=verbose
    )
    seconds = time.perf_counter() - start
    facts = {
        "train_tiles": len(x),
        "loss": [float(v) for v in history.history["loss"]],
        "data_seconds": data_seconds,
        "training_seconds": seconds,
    }
    return model, facts


def train(settings: dict | None = None, *, verbose: int = 0):
    """Train with ``settings`` (default :data:`SETTINGS`) and measure Dice on the held-out
    and other phantoms; return ``(model, metrics)``."""
    import keras
    import tensorflow as tf

    s = dict(SETTINGS if settings is None else settings)
    model, facts = fit(s, verbose=verbose)
    c = card(s)
    metrics = {
        "model": f"{MODEL_NAME}.keras",
        "held_out_dice": dice_per_organ(model, c, held_out_cases(s)),
        "other_dice": dice_per_organ(model, c, OTHER_CASES),
        "train_tiles": facts["train_tiles"],
        "final_loss": round(facts["loss"][-1], 4),
        "seed": s["seed"],
        "settings": s,
        "data_seconds": round(facts["data_seconds"], 1),
        "training_seconds": round(facts["training_seconds"], 1),
        "parameters": int(model.count_params()),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": __import__("scipy").__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "machine": f"{platform.system()} {platform.machine()}",
    }
    return model, metrics


def model_card(metrics: dict) -> str:
    """The phantom_seg.md text for ``metrics``."""
    s = metrics["settings"]
    v = metrics["versions"]
    names = [e["name"] for e in PHANTOM_LABELS.values()]
    held, other = metrics["held_out_dice"], metrics["other_dice"]
    first, last = s["train_seed0"], s["train_seed0"] + s["train_cases"] - 1
    h_first, h_last = s["held_out_seed0"], s["held_out_seed0"] + s["held_out_cases"] - 1
    fov, px, an, depth, dz = (s[k] for k in ("fov_mm", "pixel_mm", "anisotropy", "depth", "z_mm"))
    rows = "\n".join(f"| {n} | {held[n]:.4f} | {other[n]:.4f} |" for n in [*names, "mean"])
    return f"""# Model card: {MODEL_NAME} (m1vision demo organ segmenter)

**Research and demonstration use only. Not a medical device; not for diagnosis.**

## What it is
A small 2-D U-Net ({metrics["parameters"]:,} parameters; filters {"-".join(map(str, FILTERS))},
three 2x poolings) that labels every pixel of an axial CT slice of the generated phantom
(`m1vision.synthetic.ct_phantom`) with one of its organs: 0 background, then
{", ".join(f"{k} {e['name']}" for k, e in PHANTOM_LABELS.items())}
(`m1vision.synthetic.PHANTOM_LABELS`, names and colours also in `{MODEL_NAME}.json`).

Files: `{MODEL_NAME}.keras` (model), `{MODEL_NAME}.json` (the card as data: the
`segmentation` section is what a segmenter applies, see docs/segmentation-model.md),
`{MODEL_NAME}.metrics.json` (figures below, versions).

## Input, spacing and intensity preparation
Slices along axis 0 (Z) of a (Z, H, W) volume in HU, resampled in-plane to
{SPACING[0]} x {SPACING[1]} mm pixels (linear), any height and width that are multiples of
{MULTIPLE} (trained on {s["tile"]}x{s["tile"]} tiles padded with {PAD_VALUE:g} HU, air), one
channel: the window level/width {WINDOW[0]:g}/{WINDOW[1]:g} HU,
`clip((HU - (level - width/2)) / width, 0, 1)`. The model adds a narrow soft-tissue window
({SOFT_WINDOW[0]:g}/{SOFT_WINDOW[1]:g} HU) as a second channel itself.
Output: softmax over {len(PHANTOM_LABELS) + 1} classes per pixel; the class index is the label
value. The `segmentation` section of `{MODEL_NAME}.json` says this as data, and
`m1vision.inference.Segmenter(model_path("{MODEL_NAME}.keras"))` applies it: it resamples to the
model's spacing and the labels back onto the scan's grid (nearest neighbour).

## Data
{s["train_cases"]} generated phantoms, seeds {first}-{last},
`ct_phantom(shape, seed=seed)` with `ct_phantom_labels(shape, seed=seed, spacing=spacing)`; each
case's geometry drawn from its seed (`case_geometry`): in-plane field of view
{fov[0]:g}-{fov[1]:g} mm, pixels {px[0]:g}-{px[1]:g} mm, columns x{an[0]:g}-{an[1]:g} the rows'
size and field of view, {depth[0]}-{depth[1]} slices of {dz[0]:g}-{dz[1]:g} mm.
{s["slices_per_case"]} random slices per case (up to {s["lesion_fraction"]:.0%} of them among the
slices holding the liver lesion, a few percent of a volume otherwise), each a random
{s["tile"]}x{s["tile"]} tile at the model's spacing (holding the lesion where the slice does):
{metrics["train_tiles"]} tiles.
The phantom's anatomy scales with its field of view; its noise (SD 8 HU) depends on the seed.

## Training
Cross-entropy (lesion pixels weighted {s["lesion_ce_weight"]:g}x) plus {s["dice_weight"]:g} x
(1 - soft Dice over the foreground classes present in the batch),
Adam {s["learning_rate"]} with cosine decay to 5 %, {s["epochs"]} epochs, batch {s["batch_size"]},
seed {s["seed"]}: `keras.utils.set_random_seed({s["seed"]})` and
`tf.config.experimental.enable_op_determinism()`; {s["threads"]} threads.
Training time {metrics["training_seconds"]} s (+ {metrics["data_seconds"]} s generating data),
{metrics["machine"]}.

## Evaluation: Dice per organ
Whole volumes, segmented by `m1vision.inference.Segmenter` with this card (per slice, as
above) and compared on the phantom's own grid (`m1vision.labels.compare_labels`). Held out:
{s["held_out_cases"]} phantoms of seeds {h_first}-{h_last} (geometry drawn like training's,
never trained on). Other: `ct_phantom((48, 160, 160), seed=1234)` at
2.5 x 1 x 1 mm.

| organ | held out (mean of {s["held_out_cases"]}) | other size and spacing |
|---|---|---|
{rows}

Versions: Python {v["python"]}, TensorFlow {v["tensorflow"]}, Keras {v["keras"]},
NumPy {v["numpy"]}, SciPy {v["scipy"]}.

## How to reproduce
    make train-demo-segmenter    # python tools/train_demo_segmenter.py --out data/models
    python tools/train_demo_segmenter.py --out retrained/ --overwrite   # elsewhere, to compare

## Intended use
Demonstrating and testing m1vision's segmentation inference, overlays, statistics and
label comparison on CPU, offline, in seconds.

## Limitations
- It knows only the phantom: ellipsoid organs at fixed relative places in an elliptical body.
  Real CT, other anatomy, other modalities are out of its distribution; its labels on them
  mean nothing.
- The lesion and the aorta are a few pixels across at {SPACING[0]} mm: their Dice is the lowest,
  and nearest-neighbour resampling back to a finer grid costs them most.
- Not validated clinically in any way. **Research use only, not for diagnosis.**
"""


def write_outputs(model, metrics: dict, out: Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Write the model, JSON card, metrics and model card into ``out`` atomically.

    Refuses (``OutputExistsError``) before writing anything if any of them exists and
    ``overwrite`` is false.
    """
    paths = output_paths(out)
    if not overwrite:
        _training.refuse_existing(paths, out)
    shipped = build_model()  # uncompiled: no optimizer state, no training loss to load
    shipped.set_weights(model.get_weights())
    with _atomic.atomic_path(paths["model"], overwrite=overwrite) as tmp:
        shipped.save(tmp)
    _atomic.atomic_write_json(paths["card_json"], card(metrics["settings"]), overwrite=overwrite)
    _atomic.atomic_write_json(paths["metrics"], metrics, overwrite=overwrite)
    _atomic.atomic_write_text(paths["card"], model_card(metrics), overwrite=overwrite)
    return paths


def _summary(metrics: dict) -> str:
    return (
        f"held-out mean Dice {metrics['held_out_dice']['mean']:.4f}, other size/spacing "
        f"{metrics['other_dice']['mean']:.4f}"
    )


def main(argv: list[str] | None = None) -> int:
    return _training.main(argv, __doc__, output_paths, train, write_outputs, _summary)


if __name__ == "__main__":
    sys.exit(main())
