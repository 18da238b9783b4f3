"""``make demo`` / ``python -m m1vision demo``: the main job on the bundled data.

1. the doctor's report, printed and written to ``doctor.json``;
2. a windowed CT slice with its edge overlay, as a figure;
3. a batch run of an edge pipeline over the sample folder, with its report;
4. the demo model's predictions and Grad-CAM overlays for generated CT cases;
5. a record of the batch + predictions, reproduced at once (it must say "reproduced");
6. a CT volume: the generated DICOM series read, the edge pipeline applied slice by slice, the
   volume and its edges written as NIfTI with the series' geometry;
7. the CT's organs as a label map: NIfTI + sidecar, DICOM SEG referencing the series, their
   statistics CSV, an overlay picture, and a geometry check of a marked voxel across files;
8. the series segmented by the demo segmenter (``phantom_seg.keras``): the same files for
   its label map, an overlay with the ground truth outlined, Dice per organ against the
   phantom's labels, and the geometry check;
9. where every output is.

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


def step_volume(out: Path) -> list[str]:
    """The generated CT series -> edge pipeline over the volume -> NIfTI (CT and edges)."""
    from m1vision import data
    from m1vision.io import write_nifti
    from m1vision.pipeline import Pipeline
    from m1vision.volume import apply_volume

    ct = data.ct_series()
    _say(f"  {ct!r}")
    edges = apply_volume(Pipeline.from_dict(DEMO_PIPELINE), ct)
    _say(f"  edges over {edges.shape[0]} slices: {int((edges.pixels > 0).sum())} edge voxels")
    outputs = []
    for name, volume in (("ct.nii.gz", ct), ("ct_edges.nii.gz", edges)):
        target = out / "volume" / name
        existed = target.exists()
        write_nifti(target, volume, overwrite=True)
        outputs.append(_written(target, existed))
    return outputs


#: The label value and name of the one-voxel mark the geometry check finds in every file.
MARK_VALUE = 7
MARK_NAME = "geometry_mark"


def demo_labels(ct):
    """The phantom's organs on the CT's grid, plus a one-voxel mark inside the liver.

    The mark is the liver voxel of the middle axial slice nearest the centre of the liver in
    that slice (first in index order on a tie): a voxel whose world position every file
    must agree on.
    """
    import numpy as np

    from m1vision.labels import check_labels, label_map
    from m1vision.synthetic import ct_phantom_labels

    organs = ct_phantom_labels(ct.shape, spacing=ct.spacing)
    pixels = organs.pixels.copy()
    k = ct.shape[0] // 2
    liver = np.argwhere(pixels[k] == 3)
    r, c = liver[np.argmin(((liver - liver.mean(0)) ** 2).sum(1))]
    mark = (k, int(r), int(c))
    pixels[mark] = MARK_VALUE
    names = {**organs.metadata["labels"], MARK_VALUE: {"name": MARK_NAME, "color": [255, 0, 255]}}
    labels = label_map(pixels, like=ct, labels=names)
    return check_labels(labels, like=ct), mark


def seg_world_of(seg_path, segment_name: str):
    """The RAS+ mm positions of a segment's pixels in a DICOM SEG, from its own attributes
    (pydicom: each frame's ImagePositionPatient, the orientation and the pixel spacing)."""
    import numpy as np
    import pydicom

    ds = pydicom.dcmread(seg_path)
    number = next(
        int(s.SegmentNumber) for s in ds.SegmentSequence if s.SegmentLabel == segment_name
    )
    shared = ds.SharedFunctionalGroupsSequence[0]
    orient = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
    row_mm, col_mm = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    frames = ds.pixel_array.reshape(-1, int(ds.Rows), int(ds.Columns))
    points = []
    for frame, group in zip(frames, ds.PerFrameFunctionalGroupsSequence, strict=True):
        seg = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        if seg != number:
            continue
        origin = np.array(group.PlanePositionSequence[0].ImagePositionPatient, float)
        for r, c in np.argwhere(frame > 0):
            lps = origin + c * col_mm * orient[:3] + r * row_mm * orient[3:]
            points.append(lps * (-1.0, -1.0, 1.0))  # LPS -> RAS
    return np.array(points)


def step_labels(out: Path, ct_nifti: Path) -> tuple[list[str], bool]:
    """The CT's organs -> NIfTI + sidecar, DICOM SEG, statistics CSV, overlay PNG, and the
    geometry check. Returns the outputs and whether the check agreed."""
    import nibabel as nib
    import numpy as np

    from m1vision import data

    ct = data.ct_series()
    labels, mark = demo_labels(ct)
    folder = out / "labels"
    nifti, seg = folder / "organs.nii.gz", folder / "organs_seg.dcm"
    outputs, table = _write_label_files(labels, ct, nifti, seg, folder / "organs_stats.csv")
    _say(str(table))

    k = mark[0]  # the middle axial slice, through the mark
    info = labels.metadata["labels"]
    outputs.append(
        _write_overlay(
            folder / "organs_overlay.png",
            ct.pixels[k],
            [(labels.pixels[k], {"opacity": 0.4}), (labels.pixels[k], {"outline": True})],
            info,
        )
    )

    # The geometry check: the mark's world position, read by readers m1vision did not write.
    lab_nii, ct_nii = nib.load(nifti), nib.load(ct_nifti)
    ijk = np.argwhere(np.asanyarray(lab_nii.dataobj) == MARK_VALUE)
    ok = len(ijk) == 1 and _geometry_check(
        ijk[0], lab_nii, ct_nii, seg_world_of(seg, MARK_NAME), what="the mark", name="labels"
    )
    return outputs, ok


def _write_label_files(labels, ct, nifti: Path, seg: Path, stats: Path):
    """A label map of the demo series as NIfTI + sidecar and as a DICOM SEG referencing the
    series, and its statistics CSV. Returns the output lines and the statistics table."""
    from m1vision import data
    from m1vision.labels import label_stats, sidecar_path, write_labels

    outputs = []
    for path, kwargs in ((nifti, {}), (seg, {"source": data.ct_series_dir()})):
        existed = path.exists()
        write_labels(path, labels, like=ct, overwrite=True, **kwargs)
        outputs.append(_written(path, existed))
    outputs.append(f"{sidecar_path(nifti)} (names and colours)")
    table = label_stats(labels, ct)
    existed = stats.exists()
    table.to_csv(stats, overwrite=True)
    outputs.append(_written(stats, existed))
    return outputs, table


def _write_overlay(path: Path, slice_hu, layers, info) -> str:
    """A soft-tissue windowed slice with label layers ``(pixels, draw_labels options)``
    drawn in order, and a legend of the labels shown, written as a PNG."""
    import numpy as np

    from m1vision import draw
    from m1vision import preprocess as pp
    from m1vision.io import write_image

    overlay = pp.to_bgr(pp.window(slice_hu, preset="soft_tissue"))
    for pixels, options in layers:
        overlay = draw.draw_labels(overlay, pixels, labels_info=info, **options)
    shown = np.unique(np.concatenate([pixels.ravel() for pixels, _ in layers]))
    legend = draw.draw_legend(draw.legend_entries(info, values=shown), width=200)
    height = max(overlay.shape[0], legend.shape[0])
    panel = np.zeros((height, overlay.shape[1] + legend.shape[1], 3), np.uint8)
    panel[: overlay.shape[0], : overlay.shape[1]] = overlay
    panel[: legend.shape[0], overlay.shape[1] :] = legend
    existed = path.exists()
    write_image(path, panel, overwrite=True)
    return _written(path, existed)


def _geometry_check(ijk, lab_nii, ct_nii, seg_points, *, what: str, name: str) -> bool:
    """Print and return whether voxel ``ijk`` of a labels NIfTI lies at one world position
    in it, in the CT NIfTI and among a segment's points of the SEG, over liver HU in the CT."""
    import nibabel as nib
    import numpy as np

    at = nib.affines.apply_affine(lab_nii.affine, ijk)
    nearest = seg_points[np.argmin(np.abs(seg_points - at).max(1))] if len(seg_points) else at + 1
    where = {
        f"{name} NIfTI": at,
        "CT NIfTI": nib.affines.apply_affine(ct_nii.affine, ijk),
        "DICOM SEG": nearest,
    }
    hu = float(np.asanyarray(ct_nii.dataobj)[tuple(ijk)])
    spread = max(float(np.abs(p - at).max()) for p in where.values())
    ok = spread <= 1e-3 and 20.0 <= hu <= 100.0
    x, y, z = at
    _say(
        f"  geometry check: {what} (NIfTI voxel {tuple(int(i) for i in ijk)}) lies at "
        f"({x:.2f}, {y:.2f}, {z:.2f}) mm RAS in "
        + ", ".join(where)
        + f" (spread {spread:.2g} mm), over liver in the CT ({hu:.0f} HU): "
        + ("agree" if ok else "DISAGREE")
    )
    return ok


#: Dice every organ of the demo segmenter must reach on the demo series (the card: ~0.97).
MIN_DICE = 0.9


def step_segment(out: Path, ct_nifti: Path) -> tuple[list[str], bool]:
    """The CT series -> the demo segmenter -> NIfTI + sidecar, DICOM SEG, statistics CSV,
    overlay (prediction filled, ground truth outlined), Dice per organ against the phantom's
    labels, and the geometry check. Returns the outputs and whether Dice and geometry held."""
    import nibabel as nib
    import numpy as np

    from m1vision import data, draw
    from m1vision.data import model_path
    from m1vision.inference import Segmenter
    from m1vision.labels import compare_labels
    from m1vision.synthetic import ct_phantom_labels

    ct = data.ct_series()
    truth = ct_phantom_labels(ct.shape, spacing=ct.spacing)
    _, mark = demo_labels(ct)  # a liver voxel of the middle slice, for the geometry check
    started = time.perf_counter()
    segmenter = Segmenter(str(model_path("phantom_seg.keras")))
    prediction = segmenter.segment(ct)
    _say(f"  segmented {ct.shape} in {time.perf_counter() - started:.1f} s (model load included)")
    folder = out / "segmentation"
    nifti, seg = folder / "ct_seg.nii.gz", folder / "ct_seg.dcm"
    outputs, _ = _write_label_files(prediction, ct, nifti, seg, folder / "ct_seg_stats.csv")

    info = prediction.metadata["labels"]
    k = mark[0]
    outputs.append(
        _write_overlay(
            folder / "ct_seg_overlay.png",
            ct.pixels[k],
            [
                (prediction.pixels[k], {"opacity": 0.4, **draw.COMPARE_STYLES["prediction"]}),
                (truth.pixels[k], draw.COMPARE_STYLES["reference"]),
            ],
            info,
        )
    )

    comparison = compare_labels(truth, prediction)
    _say(str(comparison))
    dice_ok = all(row["dice"] >= MIN_DICE for row in comparison.rows)
    _say(f"  Dice per organ against the phantom's labels: all >= {MIN_DICE}: {dice_ok}")

    # The mark's voxel in the NIfTI's own index order, found through the world position.
    lab_nii, ct_nii = nib.load(nifti), nib.load(ct_nifti)
    world = nib.affines.apply_affine(prediction.metadata["affine"], mark)
    ijk = nib.affines.apply_affine(np.linalg.inv(lab_nii.affine), world).round().astype(int)
    predicted = int(np.asanyarray(lab_nii.dataobj)[tuple(ijk)])
    name = info[predicted]["name"] if predicted in info else "background"
    geometry_ok = _geometry_check(
        ijk, lab_nii, ct_nii, seg_world_of(seg, name), what=f"a {name} voxel", name="seg"
    )
    return outputs, dice_ok and geometry_ok and name == "liver"


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

    _say("\n== 6. a CT volume: DICOM series -> edges slice by slice -> NIfTI")
    written += step_volume(out)

    _say("\n== 7. the CT's organs: NIfTI + SEG, statistics, overlay, geometry check")
    label_outputs, aligned = step_labels(out, out / "volume" / "ct.nii.gz")
    written += label_outputs
    if not aligned:
        status = 1

    _say("\n== 8. the demo segmenter over the series: NIfTI + SEG, statistics, overlay, Dice")
    segment_outputs, segmented = step_segment(out, out / "volume" / "ct.nii.gz")
    written += segment_outputs
    if not segmented:
        status = 1

    _say(f"\n== outputs ({time.perf_counter() - started:.1f} s)")
    for line in written:
        _say(f"  {line}")
    return status
