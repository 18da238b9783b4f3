"""``make demo`` / ``python -m m1vision demo``: the main job on the bundled data.

1. the doctor's report, printed and written to ``doctor.json``;
2. a windowed CT slice with its edge overlay, as a figure;
3. a batch run of an edge pipeline over the sample folder, with its report;
4. the demo model's predictions and Grad-CAM overlays for generated CT cases;
5. a record of the batch + predictions, reproduced at once (it must say "reproduced");
6. where every output is.

The demo owns its output folder: it replaces its own files there on every run (and says so);
the batch outputs are resumable, so a second run skips what is done.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from m1vision._atomic import atomic_path, atomic_write_json

#: The edge pipeline of the batch run, as a user would export it from the explorer.
DEMO_PIPELINE = {
    "schema": "m1vision.pipeline",
    "version": 1,
    "steps": [
        {
            "name": "to_uint8",
            "params": {"mode": "percentile", "in_range": None, "percentiles": [0.5, 99.5]},
        },
        {"name": "gaussian_blur", "params": {"ksize": 5, "sigma": 1.2}},
        {
            "name": "canny",
            "params": {"low": 40.0, "high": 120.0, "aperture": 3, "l2_gradient": False},
        },
    ],
}


def _say(message: str) -> None:
    print(message, flush=True)


def _written(path: Path, existed: bool) -> str:
    return f"{path} ({'replaced' if existed else 'new'})"


def _save_figure(fig, path: Path) -> str:
    from m1vision.viz import figure_to_png

    existed = path.exists()
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_bytes(figure_to_png(fig, dpi=110))
    return _written(path, existed)


def step_doctor(out: Path) -> tuple[str, int]:
    from m1vision.doctor import get_env_info, print_env_info

    info = get_env_info(tensorflow=True)
    print_env_info(info)
    path = out / "doctor.json"
    existed = path.exists()
    atomic_write_json(path, info, overwrite=True)
    failed = sum(check["status"] == "fail" for check in info["checks"])
    return _written(path, existed), failed


def step_ct_figure(out: Path) -> str:
    from m1vision import data, draw, viz
    from m1vision import preprocess as pp

    ct = data.ct_slice_512()
    brain = pp.window(ct.pixels, preset="brain")
    bone = pp.window(ct.pixels, preset="bone")
    windowed = pp.window(ct.pixels, preset="soft_tissue")
    edges = pp.canny(pp.gaussian_blur(windowed, ksize=5, sigma=1.2), low=40, high=120)
    overlay = draw.overlay_edges(windowed, edges, color=(0, 255, 0))
    fig = viz.show(
        [brain, bone, overlay],
        titles=[
            "brain window (40/80)",
            "bone window (400/1800)",
            "Canny 40/120, soft tissue 40/400",
        ],
        cols=3,
        size=4.0,
    )
    fig.suptitle("Head CT 693_J2KI.dcm (pydicom test data), 512x512, Hounsfield units")
    return _save_figure(fig, out / "ct_edges.png")


def step_batch(out: Path):
    from m1vision import data
    from m1vision.pipeline import Pipeline

    pipeline = Pipeline.from_dict(DEMO_PIPELINE)
    report = pipeline.run(data.batch_dir(), out / "batch", progress=sys.stderr.isatty())
    _say(repr(report))
    if report.failed:
        _say(str(report))
    return pipeline, report


def step_inference(out: Path):
    """Generated CT cases -> demo model -> Grad-CAM overlays with boxes. Returns outputs."""
    from m1vision import draw, explain, synthetic
    from m1vision.inference import Predictor
    from m1vision.io import read_image, write_image
    from m1vision.pipeline import Pipeline

    model_path = _demo_model_path()
    sidecar = json.loads(model_path.with_suffix(".json").read_text())
    cases_dir = out / "cases"
    dataset = synthetic.make_lesion_dataset(6, seed=2024)
    files = []
    for i, image in enumerate(dataset.images):
        target = cases_dir / f"case{i}_{'lesion' if dataset.labels[i] else 'clear'}.png"
        write_image(target, image, overwrite=True)  # same seed, same bytes: a stable input
        files.append(target)
    preprocess = Pipeline.from_dict(sidecar["preprocessing"]["pipeline"])
    predictor = Predictor(
        str(model_path), preprocess=preprocess, labels=sidecar["labels"], device="auto"
    )
    _say(f"  {predictor.device.name}: {predictor.device.reason}")
    predictions = predictor.predict([str(p) for p in files], progress=False)
    outputs = []
    for path, top in zip(files, predictions.top_k, strict=True):
        label, score = top[0]
        image = read_image(path)
        heat = explain.grad_cam(predictor.model, image, preprocess=preprocess)
        picture = draw.overlay_heatmap(image, heat, alpha=0.35)
        if label == sidecar["labels"][1]:
            boxes = draw.mask_to_boxes(draw.heatmap_to_mask(heat, threshold=0.6))
            picture = draw.draw_boxes(
                picture, boxes, labels=[label] * len(boxes), scores=[score] * len(boxes)
            )
        target = out / "inference" / f"{path.stem}_gradcam.png"
        existed = target.exists()
        write_image(target, picture, overwrite=True)
        _say(f"  {path.name:<22} -> {label} ({score:.2f})")
        outputs.append(_written(target, existed))
    return outputs, predictor, cases_dir


def _demo_model_path() -> Path:
    from m1vision.data import model_path

    return model_path()


def run(out_dir="outputs") -> int:
    """Run the demo into ``out_dir``; return the exit status (0 when all went well)."""
    from m1vision import experiment

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    written: list[str] = []
    status = 0

    _say("== 1. environment (m1vision doctor)")
    doctor_path, failed_checks = step_doctor(out)
    written.append(doctor_path)
    if failed_checks:
        _say(f"the doctor reports {failed_checks} failed check(s): see the fixes above")

    _say("\n== 2. a windowed CT slice and its edges")
    written.append(step_ct_figure(out))

    _say("\n== 3. batch run over the sample folder")
    pipeline, report = step_batch(out)
    written.append(
        f"{out / 'batch'}/ ({len(report)} images), report {out / 'batch' / report.path.name}"
    )
    if report.failed:
        status = 1

    _say("\n== 4. the demo model: predictions and Grad-CAM")
    inference_outputs, predictor, cases_dir = step_inference(out)
    written += inference_outputs

    _say("\n== 5. record this run and reproduce it")
    from m1vision import data

    record_path = experiment.record(
        "demo",
        pipeline=pipeline,
        inputs=[data.batch_dir(), cases_dir],
        predictor=predictor,
        out_dir=out / "experiments",
    )
    result = experiment.reproduce(record_path)
    _say(str(result))
    written.append(f"{record_path} (new)")
    if not result.ok:
        status = 1

    _say(f"\n== outputs ({time.perf_counter() - started:.1f} s)")
    for line in written:
        _say(f"  {line}")
    return status
