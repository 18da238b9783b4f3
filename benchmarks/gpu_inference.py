"""Inference on a GPU with Keras 3's torch backend: m1vision's Predictor measured on CUDA.

    KERAS_BACKEND=torch python benchmarks/gpu_inference.py --ref DIR --out DIR [--quick]

Run on the accelerator machine (an NVIDIA H100; CI never runs it, `make bench` does not
either: it needs a GPU and torch). Its result, committed as
``benchmarks/results/gpu_inference_h100.json``, is a section of ``make bench``'s results
(``benchmarks/bench_inference_gpu.py`` reads it, with its machine and date).
``--ref`` holds what TensorFlow computed on the CPU here
for the shipped model (``python benchmarks/gpu_inference.py --make-ref DIR`` with TensorFlow
installed): the inputs, the probabilities and Grad-CAM heatmaps. Measured:

* the shipped ``data/models/lesion_cnn.keras`` on the GPU vs TensorFlow on the CPU: max
  abs/rel differences of probabilities and Grad-CAM, class agreement; with torch's default
  TF32 convolutions and with TF32 off (to name the source of the difference);
* the numerics self-test (:mod:`m1vision.numerics`) on the GPU, TF32 on and off;
* MobileNetV2 224x224 (``weights=None``, nothing downloaded) on 512x512 16-bit PNG files, per
  batch size: the seed-style eager loop (per image: read, preprocess, ``model(x[None])``),
  ``Predictor.predict(files)`` (reading and preprocessing overlapped with inference),
  preprocessing alone, the Predictor's no-grad inference call alone and
  ``model.predict_on_batch`` on the same ready arrays, and Grad-CAM per image.

Every timing is the median of ``repeats`` runs after a warm-up, the methods taking turns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (ROOT, HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

LESION = ROOT / "data" / "models" / "lesion_cnn.keras"


def _cases(n: int):
    """n preprocessed cases of the shipped model's data: float32 (n, 128, 128, 1) 0-255."""
    import numpy as np

    from m1vision.synthetic import make_lesion_dataset

    data = make_lesion_dataset(n, size=128, seed=123, positive_fraction=0.5)
    return data.images.astype(np.float32)[..., None], data.labels


def make_ref(out: Path, n: int = 64) -> None:
    """TensorFlow on the CPU: inputs, probabilities and Grad-CAM of the shipped model."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import numpy as np

    from m1vision.explain import grad_cam
    from m1vision.inference import Predictor, load_model

    out.mkdir(parents=True, exist_ok=True)
    model = load_model(LESION)
    x, labels = _cases(n)
    probabilities = Predictor(model, device="cpu").predict(x).probabilities
    heat = np.stack(
        [grad_cam(model, x[i, :, :, 0], class_index=1, device="/CPU:0") for i in range(8)]
    )
    np.save(out / "x.npy", x)
    np.save(out / "labels.npy", labels)
    np.save(out / "tf_cpu_probabilities.npy", probabilities)
    np.save(out / "tf_cpu_grad_cam.npy", heat)
    import tensorflow as tf

    (out / "ref.json").write_text(
        json.dumps({"tensorflow": tf.__version__, "n": n, "grad_cam_images": 8}), "utf-8"
    )


def _medians(methods: dict, repeats: int) -> dict:
    """The CPU benchmark's timing (a warm-up each: cuDNN autotuning, allocator, page cache;
    then the methods take turns; medians)."""
    from bench_inference import _interleaved_medians

    return _interleaved_medians(methods, repeats)


def _write_pngs(folder: Path, n: int, size: int, workers: int) -> list[Path]:
    from concurrent.futures import ThreadPoolExecutor

    import cv2
    import numpy as np
    from skimage.data import shepp_logan_phantom

    folder.mkdir(parents=True, exist_ok=True)
    base = cv2.resize(shepp_logan_phantom().astype(np.float32), (size, size))

    def one(i):
        rng = np.random.default_rng(i)
        image = np.clip(base * 40000 + rng.normal(0, 800, base.shape), 0, 65535).astype(np.uint16)
        path = folder / f"img_{i:05d}.png"
        cv2.imwrite(str(path), image)
        return path

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(n)))


def accuracy(ref: Path, out: dict, device: str) -> None:
    import numpy as np
    import torch

    from m1vision.explain import grad_cam
    from m1vision.inference import Predictor, load_model

    x = np.load(ref / "x.npy")
    tf_p = np.load(ref / "tf_cpu_probabilities.npy")
    tf_heat = np.load(ref / "tf_cpu_grad_cam.npy")
    model = load_model(LESION)  # safe mode
    rows = {}
    for tf32 in (True, False):
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        predictor = Predictor(model, device=device, batch_size=32)
        p = predictor.predict(x).probabilities
        heat = np.stack(
            [
                grad_cam(model, x[i, :, :, 0], class_index=1, device=predictor.device)
                for i in range(len(tf_heat))
            ]
        )
        diff = np.abs(p - tf_p)
        rows["tf32_on" if tf32 else "tf32_off"] = {
            "device": predictor.device.name,
            "max_abs_diff_probabilities": float(diff.max()),
            "max_rel_diff_probabilities": float((diff / np.maximum(np.abs(tf_p), 1e-3)).max()),
            "classes_agree": int((p.argmax(1) == tf_p.argmax(1)).sum()),
            "cases": len(p),
            "max_abs_diff_grad_cam": float(np.abs(heat - tf_heat).max()),
        }
    torch.backends.cudnn.allow_tf32 = True  # torch's defaults back
    torch.backends.cuda.matmul.allow_tf32 = False
    out["lesion_vs_tensorflow_cpu"] = rows
    out["reference"] = json.loads((ref / "ref.json").read_text("utf-8"))


def selftests(out: dict, device: str) -> None:
    import torch

    from m1vision.numerics import selftest

    rows = {}
    for tf32 in (True, False):
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        r = selftest("cuda:0" if device == "gpu" else "cpu", backend="torch")
        rows["tf32_on" if tf32 else "tf32_off"] = {
            k: r[k] for k in ("ok", "relative_error", "max_abs_diff", "tolerance", "classes_agree")
        }
    rows["cpu"] = {k: selftest("cpu", backend="torch")[k] for k in ("ok", "relative_error")}
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = False
    from m1vision.inference import select_device

    choice = select_device("auto")
    rows["select_device_auto"] = {"name": choice.name, "reason": choice.reason}
    out["selftest"] = rows


def speed(out: dict, *, quick: bool, workers: int, device: str) -> None:
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    import keras
    import numpy as np

    from m1vision.explain import grad_cam
    from m1vision.inference import Predictor
    from m1vision.pipeline import Normalize, Pipeline

    n = 64 if quick else 1024
    size = 96 if quick else 224
    repeats = 1 if quick else 3
    eager_n = 8 if quick else 64
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        weights=None, input_shape=(size, size, 3), alpha=0.35 if quick else 1.0
    )
    with tempfile.TemporaryDirectory(prefix="m1vision-gpu-bench-") as tmp:
        start = time.perf_counter()
        paths = _write_pngs(Path(tmp), n, 128 if quick else 512, workers)
        out["png_write_s"] = time.perf_counter() - start
        preprocess = Pipeline([Normalize(mode="mobilenet")])
        rows = []
        import cv2

        default_cv = cv2.getNumThreads()
        # (batch, OpenCV threads, thread workers, executor): threads as before the process
        # executor, then worker processes writing into shared-memory batch buffers (their
        # workers: the cores less one, the Predictor's default)
        configs = (
            [(16, 0, workers, "threads"), (16, 0, None, "processes")]
            if quick
            else [
                (32, 0, workers, "threads"),
                (128, 0, workers, "threads"),
                (32, 0, None, "processes"),
                (128, 0, None, "processes"),
            ]
        )
        for batch_size, cv_threads, workers, executor in configs:
            cv2.setNumThreads(cv_threads or default_cv)
            predictor = Predictor(
                model,
                preprocess=preprocess,
                batch_size=batch_size,
                device=device,
                workers=workers,
                executor=executor,
            )
            bare = Predictor(model, batch_size=batch_size, device=predictor.device)

            def prepare_threads(predictor=predictor):
                with ThreadPoolExecutor(predictor.workers) as pool:
                    return list(pool.map(predictor.prepare, paths))

            def prepare_processes(predictor=predictor):
                # the stage alone on the same workers and buffers predict() uses
                for _ in predictor._shared_batches().batches(paths, str):
                    pass

            ready = np.stack(prepare_threads())
            batches = [ready[i : i + batch_size] for i in range(0, n, batch_size)]
            subset = paths[:eager_n]

            def eager_loop(predictor=predictor, subset=subset):
                for p in subset:  # the seed's loop: per file read + preprocess, eager call
                    x = predictor.prepare(p)
                    keras.ops.convert_to_numpy(model(x[None], training=False))

            methods = {
                "prep_s": prepare_threads if executor == "threads" else prepare_processes,
                "infer_s": lambda predictor=predictor, batches=batches: [
                    predictor._run(b) for b in batches
                ],
                "pob_s": lambda batches=batches: [model.predict_on_batch(b) for b in batches],
                "predictor_ready_s": lambda bare=bare, ready=ready: bare.predict(
                    ready, progress=False
                ),
                "predictor_s": lambda predictor=predictor: predictor.predict(paths, progress=False),
            }
            if (batch_size, cv_threads, executor) == (16 if quick else 32, 0, "threads"):
                methods["eager_subset_s"] = eager_loop
            t = _medians(methods, repeats)
            ran = predictor.predict(paths[: 2 * batch_size], progress=False).executor
            threads_result = Predictor(
                model,
                preprocess=preprocess,
                batch_size=batch_size,
                device=predictor.device,
                executor="threads",
            ).predict(paths[: 2 * batch_size], progress=False)
            same = np.array_equal(
                predictor.predict(paths[: 2 * batch_size], progress=False).probabilities,
                threads_result.probabilities,
            )
            predictor.close()
            row = {
                "batch_size": batch_size,
                "n": n,
                "device": predictor.device.name,
                "executor": ran,
                "workers": predictor.workers if executor == "threads" else ran,
                "opencv_threads": cv2.getNumThreads(),
                "same_probabilities_as_threads": bool(same),
            }
            row.update({k: round(v, 4) for k, v in t.items()})
            for k in ("prep_s", "infer_s", "pob_s", "predictor_ready_s", "predictor_s"):
                row[k.replace("_s", "_ips")] = round(n / t[k], 1)
            if "eager_subset_s" in t:
                row["eager_ips"] = round(eager_n / t["eager_subset_s"], 2)
                row["predictor_vs_eager"] = round(row["predictor_ips"] / row["eager_ips"], 1)
            row["predictor_vs_pob"] = round(row["predictor_ips"] / row["pob_ips"], 3)
            row["predictor_ready_vs_pob"] = round(row["predictor_ready_ips"] / row["pob_ips"], 3)
            row["overlap_vs_slower_stage"] = round(
                t["predictor_s"] / max(t["prep_s"], t["infer_s"]), 3
            )
            got = bare.predict(ready, progress=False).probabilities
            expected = np.concatenate([model.predict_on_batch(b) for b in batches])
            row["max_abs_diff_vs_pob"] = float(np.abs(got - expected).max())
            rows.append(row)
        out["mobilenetv2"] = {"size": size, "rows": rows}
        # Grad-CAM per image, MobileNetV2 and the shipped model
        image = np.asarray(ready[0])
        k = 3 if quick else 20
        grad_cam(model, image, device=predictor.device)  # warm-up (builds the grad model)
        start = time.perf_counter()
        for _ in range(k):
            grad_cam(model, image, device=predictor.device)
        out["grad_cam_mobilenetv2_ms"] = round(1000 * (time.perf_counter() - start) / k, 2)
    from m1vision.inference import load_model

    lesion = load_model(LESION)
    x = np.zeros((128, 128), np.float32)
    grad_cam(lesion, x, device=predictor.device)
    start = time.perf_counter()
    for _ in range(k):
        grad_cam(lesion, x, device=predictor.device)
    out["grad_cam_lesion_ms"] = round(1000 * (time.perf_counter() - start) / k, 2)


def markdown(result: dict) -> str:
    """The rows of a result file for docs/benchmarks.md (Markdown), the machine named."""
    m = result["machine"]
    lines = [
        (
            f"Machine: {m['gpu']}, {m['cpu_count']} CPU cores, {m['platform']}, Python "
            f"{m['python']}, torch {m['torch']}, Keras {m['keras']} "
            f"(backend {m['keras_backend']}), "
            f"NumPy {m['numpy']}. Run: {result['run']}. Not Metal: nothing here was run on a Mac."
        ),
        "",
        "| MobileNetV2 224x224, 1024 16-bit 512x512 PNG files | batch | img/s | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for r in result["mobilenetv2"]["rows"]:
        tag = f"{r['batch_size']}" + (
            f", OpenCV {r['opencv_threads']} thread(s), {r['workers']} workers"
            if r.get("opencv_threads") == 1
            else ""
        )
        if r.get("executor"):
            tag += f", {r['executor'].split(';')[0]}"
        if "eager_ips" in r:
            lines.append(
                f"| seed-style eager loop (per image: read, preprocess, model) | 1 | "
                f"{r['eager_ips']} | 1 | |"
            )
            lines.append(
                f"| Predictor.predict(files) / eager loop | {tag} | {r['predictor_ips']} | "
                f"{r['predictor_vs_eager']}x | >= 20x |"
            )
        lines += [
            (
                f"| Predictor inference call alone / predict_on_batch, ready arrays | {tag} | "
                f"{r['infer_ips']} / {r['pob_ips']} | "
                f"{r['infer_ips'] / r['pob_ips']:.2f}x | >= 0.9x |"
            ),
            (
                f"| Predictor.predict(ready arrays) / predict_on_batch | {tag} | "
                f"{r['predictor_ready_ips']} | {r['predictor_ready_vs_pob']}x | >= 0.9x |"
            ),
            (
                f"| Predictor.predict(files): overlapped / slower stage alone | {tag} | "
                f"{r['predictor_ips']} (prep {r['prep_ips']}, infer {r['infer_ips']}) | "
                f"{r['overlap_vs_slower_stage']}x | <= 1.1x |"
            ),
        ]
    lines += [
        "",
        (
            "| the shipped lesion_cnn.keras on the H100 vs TensorFlow 2.18.1 on a CPU | TF32 on "
            "(torch's default) | TF32 off |"
        ),
        "|---|---|---|",
    ]
    acc = result["lesion_vs_tensorflow_cpu"]
    for key, label in [
        ("max_abs_diff_probabilities", "max abs difference of probabilities"),
        ("max_rel_diff_probabilities", "max relative difference (on max(p, 1e-3))"),
        ("max_abs_diff_grad_cam", "max abs difference of Grad-CAM (0-1)"),
    ]:
        lines.append(f"| {label} | {acc['tf32_on'][key]:.2g} | {acc['tf32_off'][key]:.2g} |")
    lines.append(
        f"| same class | {acc['tf32_on']['classes_agree']} of {acc['tf32_on']['cases']} | "
        f"{acc['tf32_off']['classes_agree']} of {acc['tf32_off']['cases']} |"
    )
    st = result["selftest"]
    lines.append(
        f"| numerics self-test, relative error on logits (GPU tolerance "
        f"{st['tf32_on']['tolerance']:g}) | {st['tf32_on']['relative_error']:.2g} | "
        f"{st['tf32_off']['relative_error']:.2g} |"
    )
    lines += [
        "",
        (
            f"Grad-CAM per image on the GPU: {result['grad_cam_lesion_ms']} ms "
            "(lesion_cnn 128x128), "
            f"{result['grad_cam_mobilenetv2_ms']} ms (MobileNetV2 224x224). select_device('auto'): "
            f"{st['select_device_auto']['reason']}."
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--make-ref", type=Path, help="write TensorFlow CPU references here")
    parser.add_argument("--ref", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--device", default="gpu", help="gpu (default) or cpu, to try it out")
    parser.add_argument("--markdown", type=Path, help="print the Markdown rows of a result file")
    args = parser.parse_args(argv)
    if args.make_ref:
        make_ref(args.make_ref)
        return 0
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text("utf-8"))), end="")
        return 0
    import keras
    import numpy as np
    import torch

    out = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__,
            "keras": keras.__version__,
            "keras_backend": keras.config.backend(),
            "numpy": np.__version__,
            "workers": args.workers,
        },
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    steps = [
        ("accuracy", lambda: accuracy(args.ref, out, args.device)),
        ("selftest", lambda: selftests(out, args.device)),
        ("speed", lambda: speed(out, quick=args.quick, workers=args.workers, device=args.device)),
    ]
    for name, step in steps:
        start = time.perf_counter()
        try:
            step()
        except Exception as exc:  # one failing part must not lose the others' figures
            import traceback

            out[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        out[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
        print(name, "done", out[f"{name}_seconds"], "s", flush=True)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "gpu_inference.json").write_text(json.dumps(out, indent=2), "utf-8")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
