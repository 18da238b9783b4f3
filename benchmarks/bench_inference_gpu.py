"""Inference on a GPU (Keras' torch backend on an NVIDIA H200): the stored figures, reported.

``make bench`` cannot measure this here (no GPU, no torch): ``benchmarks/gpu_inference.py``
measures it on the accelerator machine and its result file is committed as
``benchmarks/results/gpu_inference_h200.json`` (the earlier H100 runs are kept beside it as
``gpu_inference_h100*.json``). This benchmark reads that file and reports it
as a section of the main results, with the machine and date it was measured on (it measures
nothing itself). Re-measure with ``KERAS_BACKEND=torch python benchmarks/gpu_inference.py
--ref REF --out OUT`` on the accelerator machine and copy ``OUT/gpu_inference.json`` over the
stored file.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "gpu_inference_h200.json"
TITLE = "Inference on a GPU: Keras' torch backend, MobileNetV2 224x224 on 512x512 PNGs"
# rows since prepare_on (gpu_inference.py): predict_on_batch on device tensors, the Predictor
# prepared on the CPU and on the device (decode on the CPU, tensor maths on the GPU)
COLUMNS = ["measurement", "batch", "img/s", "ratio", "target"]


def _target(name: str, value: float, op: str, bound: float) -> dict:
    met = value >= bound if op == ">=" else value <= bound
    return {"name": name, "value": value, "target": f"{op} {bound:g}", "met": bool(met)}


def section(result: dict) -> dict:
    """The ``make bench`` section of a ``gpu_inference.py`` result (a dict)."""
    m = result["machine"]
    rows, targets = [], []
    for r in result["mobilenetv2"]["rows"]:
        if "pob_device_ips" in r:  # runs since prepare_on: the CPU and the device paths
            _prepare_on_rows(r, rows, targets)
            continue
        tag = f"{r['batch_size']}" + (
            f", OpenCV 1 thread, {r['workers']} workers" if r.get("opencv_threads") == 1 else ""
        )
        if "executor" in r:  # runs since the process path: preprocessing in threads or processes
            tag += f", {r['executor'].split(' (')[0]} preprocessing"
        checks = []
        if "eager_ips" in r:
            rows.append(
                [
                    "seed-style eager loop (read, preprocess, model per image)",
                    "1",
                    r["eager_ips"],
                    1.0,
                    "",
                ]
            )
            checks.append(
                (
                    "Predictor.predict(files) / eager loop",
                    r["predictor_ips"],
                    r["predictor_vs_eager"],
                    ">=",
                    20.0,
                )
            )
        checks += [
            (
                "Predictor inference call / predict_on_batch (ready arrays)",
                r["infer_ips"],
                round(r["infer_ips"] / r["pob_ips"], 3),
                ">=",
                0.9,
            ),
            (
                "Predictor.predict(ready arrays) / predict_on_batch",
                r["predictor_ready_ips"],
                r["predictor_ready_vs_pob"],
                ">=",
                0.9,
            ),
            (
                "Predictor.predict(files): overlapped / slower stage alone",
                r["predictor_ips"],
                r["overlap_vs_slower_stage"],
                "<=",
                1.1,
            ),
        ]
        for name, ips, ratio, op, bound in checks:
            rows.append([name, tag, ips, ratio, f"{op} {bound:g}"])
            targets.append(_target(f"{name}, batch {tag}", ratio, op, bound))
    acc, st = result.get("lesion_vs_tensorflow_cpu"), result["selftest"]
    if acc is None:  # a run without --ref
        acc = {
            k: dict.fromkeys(
                ["max_abs_diff_probabilities", "max_abs_diff_grad_cam", "classes_agree", "cases"],
                float("nan"),
            )
            for k in ("tf32_on", "tf32_off")
        }
        result = {**result, "reference": {"tensorflow": "(not compared: no --ref)"}}
    on, off = acc["tf32_on"], acc["tf32_off"]
    notes = (
        f"Not Metal: nothing here ran on a Mac. {m['gpu']}, torch {m['torch']}, Keras "
        f"{m['keras']} (backend {m['keras_backend']}), NumPy {m['numpy']}, Python {m['python']}; "
        "medians after a warm-up, methods taking turns (benchmarks/gpu_inference.py). The shipped "
        f"lesion_cnn.keras on the GPU vs TensorFlow {result['reference']['tensorflow']} on a CPU, "
        f"TF32 on (torch's default) / off: max abs difference of probabilities "
        f"{on['max_abs_diff_probabilities']:.2g} / {off['max_abs_diff_probabilities']:.2g}, of "
        f"Grad-CAM {on['max_abs_diff_grad_cam']:.2g} / {off['max_abs_diff_grad_cam']:.2g}, same "
        f"class {on['classes_agree']} / {off['classes_agree']} of {on['cases']}; numerics "
        f"self-test relative error {st['tf32_on']['relative_error']:.2g} / "
        f"{st['tf32_off']['relative_error']:.2g} (GPU tolerance {st['tf32_on']['tolerance']:g}). "
        f"Grad-CAM per image: {result['grad_cam_lesion_ms']} ms (lesion_cnn 128x128), "
        f"{result['grad_cam_mobilenetv2_ms']} ms (MobileNetV2). select_device('auto'): "
        f"{st['select_device_auto']['reason']}. Figures from the stored file, not re-measured."
    )
    return {
        "title": TITLE,
        "columns": COLUMNS,
        "rows": rows,
        "targets": targets,
        "notes": notes,
        "machine": (
            f"accelerator machine: {m['gpu']}, {m['cpu_count']} CPU cores, {m['platform']}"
        ),
        "date": result["run"],
    }


def _prepare_on_rows(r: dict, rows: list, targets: list) -> None:
    """A row of gpu_inference.py since ``prepare_on``: predict_on_batch on device tensors,
    then the Predictor prepared on the CPU and on the device, with their overlap."""
    bs = str(r["batch_size"])
    rows.append(["predict_on_batch, ready tensors on the device", bs, r["pob_device_ips"], 1.0, ""])
    for where in ("cpu", "device"):
        executor = r[f"executor_{where}"].split(" (")[0]
        checks = [
            (
                f"Predictor.predict(files), prepare_on={where!r} ({executor}) / predict_on_batch",
                r[f"predictor_{where}_ips"],
                r[f"predictor_{where}_vs_pob"],
                ">=",
                0.9,
            ),
            (
                (
                    f"prepare_on={where!r}: overlapped / slower stage alone (prep "
                    f"{r[f'prep_{where}_ips']}, infer {r[f'infer_{where}_ips']} img/s)"
                ),
                r[f"predictor_{where}_ips"],
                r[f"overlap_{where}"],
                "<=",
                1.1,
            ),
        ]
        for name, ips, ratio, op, bound in checks:
            rows.append([name, bs, ips, ratio, f"{op} {bound:g}"])
            targets.append(_target(f"{name}, batch {bs}", ratio, op, bound))


def run(*, quick: bool = False) -> dict:
    """The stored GPU figures as a section (``quick`` changes nothing: nothing is measured)."""
    if not RESULTS.is_file():
        raise FileNotFoundError(
            f"{RESULTS} is missing: measure it on the accelerator machine with "
            "benchmarks/gpu_inference.py (see its docstring)."
        )
    return section(json.loads(RESULTS.read_text(encoding="utf-8")))


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
