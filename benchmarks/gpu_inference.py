"""Inference on a GPU with Keras 3's torch backend: m1vision's Predictor measured on CUDA.

    KERAS_BACKEND=torch python3 benchmarks/gpu_inference.py --ref DIR --out DIR [--quick]
        [--stages]

Run on the accelerator machine (an NVIDIA GPU; CI never runs it, `make bench` does not
either: it needs a GPU). It writes ``OUT/gpu_inference.json`` and ``OUT/gpu_inference.md``
(the Markdown rows); the JSON, committed as ``benchmarks/results/gpu_inference_h200.json``,
is a section of ``make bench``'s results (``benchmarks/bench_inference_gpu.py`` reads it, with
its machine and date). ``--ref`` (optional: without it the accuracy part is left out) holds
what TensorFlow computed on the CPU here for the shipped model (``python
benchmarks/gpu_inference.py --make-ref DIR`` with TensorFlow installed): the inputs, the
probabilities and Grad-CAM heatmaps. Any backend runs it (``KERAS_BACKEND=jax python
benchmarks/gpu_inference.py --quick --device cpu --out DIR`` tries it out on a CPU).
Measured:

* the shipped ``data/models/lesion_cnn.keras`` on the GPU vs TensorFlow on the CPU: max
  abs/rel differences of probabilities and Grad-CAM, class agreement; with torch's default
  TF32 convolutions and with TF32 off (to name the source of the difference);
* the numerics self-test (:mod:`m1vision.numerics`) on the GPU, TF32 on and off;
* MobileNetV2 224x224 (``weights=None``, nothing downloaded) on 1024 16-bit 512x512 PNG files
  with ``Normalize(mode="mobilenet")``, at batch 32 and 128: ``model.predict_on_batch`` on
  ready tensors already on the device (the reference), ``Predictor.predict(files)`` with
  ``prepare_on="cpu"`` (everything prepared by OpenCV on the CPU cores) and ``"device"``
  (the CPU decodes; to_uint8, normalise, resize, channels as keras.ops on the GPU), each
  one's preparation alone (for "device": reading and decoding) and inference alone (for
  "device": the device part and the model on decoded batches), and the overlap ratio
  ``Predictor time / max(preparation, inference)``; Grad-CAM per image;
* with ``--workers-sweep 15,12,9``: ``prepare_on="device"`` with each worker count (do
  fewer decoding workers leave the core that feeds the GPU faster?);
* ``prepare_on="device"`` again with the device runner staging each next batch in the
  calling thread between two batches instead of in its staging thread (``in_turn``): what
  the thread gains;
* with ``--stages``: where the device runner's time goes on the decoded batches (``stages``
  in each row): per call over all batches, the seconds of staging (pinned copy and upload),
  the device part, the model and the download, each ended by ``torch.cuda.synchronize()``
  (so the stages add up to more than ``infer_device_s``, which overlaps them).

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


def _torch():
    """torch when Keras runs on it (the accelerator machine), else None."""
    import keras

    if keras.config.backend() != "torch":
        return None
    import torch

    return torch


def _tf32(torch, on: bool) -> None:
    if torch is not None:
        torch.backends.cudnn.allow_tf32 = on
        torch.backends.cuda.matmul.allow_tf32 = on


def accuracy(ref: Path, out: dict, device: str) -> None:
    import numpy as np

    torch = _torch()

    from m1vision.explain import grad_cam
    from m1vision.inference import Predictor, load_model

    x = np.load(ref / "x.npy")
    tf_p = np.load(ref / "tf_cpu_probabilities.npy")
    tf_heat = np.load(ref / "tf_cpu_grad_cam.npy")
    model = load_model(LESION)  # safe mode
    rows = {}
    for tf32 in (True, False):
        _tf32(torch, tf32)
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
    if torch is not None:  # torch's defaults back
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = False
    out["lesion_vs_tensorflow_cpu"] = rows
    out["reference"] = json.loads((ref / "ref.json").read_text("utf-8"))


def selftests(out: dict, device: str) -> None:
    import keras

    from m1vision._devices import cpu_name
    from m1vision.numerics import selftest

    torch = _torch()
    backend = keras.config.backend()
    gpu = {"torch": "cuda:0", "tensorflow": "/GPU:0", "jax": "gpu:0"}[backend]
    rows = {}
    for tf32 in (True, False):
        _tf32(torch, tf32)
        r = selftest(gpu if device == "gpu" else cpu_name(backend), backend=backend)
        rows["tf32_on" if tf32 else "tf32_off"] = {
            k: r[k] for k in ("ok", "relative_error", "max_abs_diff", "tolerance", "classes_agree")
        }
    rows["cpu"] = {
        k: selftest(cpu_name(backend), backend=backend)[k] for k in ("ok", "relative_error")
    }
    if torch is not None:
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = False
    from m1vision.inference import select_device

    choice = select_device("auto")
    rows["select_device_auto"] = {"name": choice.name, "reason": choice.reason}
    out["selftest"] = rows


def _stage_alone(predictor, paths) -> None:
    """Preparation alone, as ``predictor.predict(paths)`` runs it (same executor, workers and
    buffers, same CPU/device split), without the model: for ``prepare_on="device"`` this is
    the CPU part (reading and decoding); the device part is timed with the model."""
    device_plan, _ = predictor._where()
    staging = None
    if device_plan is not None:
        first = device_plan.decode(paths[0])
        staging = (first.shape, first.dtype)
    if predictor._processes_refused(paths, device_plan, staging) is None:
        shared = predictor._shared_batches(device_plan, staging)
        batches = (
            shared.staged_batches(paths, str)
            if device_plan is not None
            else shared.batches(paths, str)
        )
    else:
        prepare = device_plan.decode if device_plan is not None else None
        batches = predictor._batches(paths, record_errors=False, prepare=prepare)
    for _ in batches:
        pass


def _in_turn(predictor, paths):
    """``predictor.predict(paths)`` with the device runner staging each next batch in the
    calling thread, between two batches (its behaviour before the staging thread)."""
    from m1vision.inference._device_runner import DeviceRunner

    DeviceRunner.threaded = False
    try:
        return predictor.predict(paths, progress=False)
    finally:
        DeviceRunner.threaded = True


def _device_tensors(batches, device: str):
    """``batches`` as tensors on the model's device (what predict_on_batch is fed "ready")."""
    import keras

    with keras.device(device):
        return [keras.ops.convert_to_tensor(b) for b in batches]


def _sync() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:
        pass


def speed(
    out: dict,
    *,
    quick: bool,
    workers: int | None,
    device: str,
    executor: str,
    stages=False,
    workers_sweep=(),
) -> None:
    """MobileNetV2 on 16-bit PNG files at two batch sizes: predict_on_batch on ready device
    tensors, Predictor with prepare_on="cpu" and "device", each stage alone, the overlap."""
    import tempfile

    import keras
    import numpy as np

    from m1vision.explain import grad_cam
    from m1vision.inference import Predictor
    from m1vision.pipeline import Normalize, Pipeline

    n = 64 if quick else 1024
    size = 96 if quick else 224
    png = 128 if quick else 512
    repeats = 1 if quick else 3
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        weights=None, input_shape=(size, size, 3), alpha=0.35 if quick else 1.0
    )
    with tempfile.TemporaryDirectory(prefix="m1vision-gpu-bench-") as tmp:
        start = time.perf_counter()
        paths = _write_pngs(Path(tmp), n, png, os.cpu_count() or 2)
        out["png_write_s"] = time.perf_counter() - start
        preprocess = Pipeline([Normalize(mode="mobilenet")])
        rows = []
        for batch_size in (16, 32) if quick else (32, 128):
            predictors = {
                where: Predictor(
                    model,
                    preprocess=preprocess,
                    batch_size=batch_size,
                    device=device,
                    workers=workers,
                    executor=executor,
                    prepare_on=where,
                )
                for where in ("cpu", "device")
            }
            cpu, dev = predictors["cpu"], predictors["device"]
            name = cpu.device.name
            ready = np.stack([cpu.prepare(p) for p in paths])
            batches = [ready[i : i + batch_size] for i in range(0, n, batch_size)]
            on_device = _device_tensors(batches, name)
            device_plan, _ = dev._where()
            decoded = [
                _device_prep_groups(device_plan, paths[i : i + batch_size])
                for i in range(0, n, batch_size)
            ]
            runner = dev._device_runner(device_plan)

            def pob(on_device=on_device):
                for b in on_device:
                    keras.ops.convert_to_numpy(model.predict_on_batch(b))

            def infer_device(runner=runner, decoded=decoded):
                for _ in runner.run(decoded, owned=True):
                    pass

            methods = {
                "pob_device_s": pob,
                "pob_numpy_s": lambda batches=batches: [model.predict_on_batch(b) for b in batches],
                "prep_cpu_s": lambda p=cpu: _stage_alone(p, paths),
                "infer_cpu_s": lambda p=cpu, batches=batches: [p._run(b) for b in batches],
                "predictor_cpu_s": lambda p=cpu: p.predict(paths, progress=False),
                "prep_device_s": lambda p=dev: _stage_alone(p, paths),
                "infer_device_s": infer_device,
                "predictor_device_s": lambda p=dev: p.predict(paths, progress=False),
                "predictor_device_in_turn_s": lambda p=dev: _in_turn(p, paths),
            }
            timed = {k: (lambda f=f: (f(), _sync())) for k, f in methods.items()}
            t = _medians(timed, repeats)
            p_cpu = cpu.predict(paths, progress=False)
            p_dev = dev.predict(paths, progress=False)
            expected = np.concatenate([np.asarray(model.predict_on_batch(b)) for b in batches])
            row = {
                "batch_size": batch_size,
                "n": n,
                "device": name,
                "executor_cpu": p_cpu.executor,
                "executor_device": p_dev.executor,
                "max_abs_diff_cpu_vs_pob": float(np.abs(p_cpu.probabilities - expected).max()),
                "max_abs_diff_device_vs_cpu": float(
                    np.abs(p_dev.probabilities - p_cpu.probabilities).max()
                ),
                "top1_agree_device_vs_cpu": int(
                    (p_dev.probabilities.argmax(1) == p_cpu.probabilities.argmax(1)).sum()
                ),
            }
            # the model's inputs themselves: the device part on the first decoded batch
            (rows0, (x0, event), dtype0), *_ = runner.stage(decoded[0], owned=True)
            if event is not None:
                event.synchronize()
            with keras.device(name):
                made = keras.ops.convert_to_numpy(device_plan.apply(x0, dtype0))
            row["max_abs_diff_inputs_device_vs_cpu"] = float(np.abs(made - ready[rows0]).max())
            if stages:
                row["stages"] = _runner_stages(runner, decoded, repeats)
            if workers_sweep:
                row["workers_sweep_ips"] = _workers_sweep(
                    model, preprocess, paths, batch_size, device, executor, workers_sweep, repeats
                )
            for p in predictors.values():
                p.close()
            row.update({k: round(v, 4) for k, v in t.items()})
            for k, v in t.items():
                row[k.replace("_s", "_ips")] = round(n / v, 1)
            for where in ("cpu", "device"):
                slower = max(t[f"prep_{where}_s"], t[f"infer_{where}_s"])
                row[f"overlap_{where}"] = round(t[f"predictor_{where}_s"] / slower, 3)
                row[f"predictor_{where}_vs_pob"] = round(
                    t["pob_device_s"] / t[f"predictor_{where}_s"], 3
                )
            row["predictor_device_in_turn_vs_pob"] = round(
                t["pob_device_s"] / t["predictor_device_in_turn_s"], 3
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
        out["mobilenetv2"] = {"size": size, "png": png, "rows": rows}
        image = np.asarray(ready[0])
        k = 3 if quick else 20
        grad_cam(model, image, device=cpu.device)  # warm-up (builds the grad model)
        start = time.perf_counter()
        for _ in range(k):
            grad_cam(model, image, device=cpu.device)
        out["grad_cam_mobilenetv2_ms"] = round(1000 * (time.perf_counter() - start) / k, 2)
    from m1vision.inference import load_model

    lesion = load_model(LESION)
    x = np.zeros((128, 128), np.float32)
    grad_cam(lesion, x, device=cpu.device)
    start = time.perf_counter()
    for _ in range(k):
        grad_cam(lesion, x, device=cpu.device)
    out["grad_cam_lesion_ms"] = round(1000 * (time.perf_counter() - start) / k, 2)


def _workers_sweep(model, preprocess, paths, batch_size, device, executor, counts, repeats):
    """``Predictor.predict(files)`` with ``prepare_on="device"`` and each worker count of
    ``counts``: images per second by count (fewer workers leave the cores that feed the
    device free; too few cannot decode fast enough)."""
    from m1vision.inference import Predictor

    ips = {}
    for n in counts:
        with Predictor(
            model,
            preprocess=preprocess,
            batch_size=batch_size,
            device=device,
            workers=n,
            executor=executor,
            prepare_on="device",
        ) as p:
            t = _medians({"s": lambda p=p: (p.predict(paths, progress=False), _sync())}, repeats)
        ips[str(n)] = round(len(paths) / t["s"], 1)
    return ips


def _runner_stages(runner, decoded, repeats: int) -> dict:
    """Seconds per stage of the device runner over ``decoded`` (median of ``repeats``)."""
    import statistics

    from m1vision.inference._clock import StageClock

    runs = []
    for _ in range(repeats):
        runner._stage_clock = clock = StageClock(_sync)
        clock.start()
        for _ in runner.run(decoded, owned=True):
            pass
        runs.append(clock)
    runner._stage_clock = None
    names = list(runs[0].seconds)
    return {
        "seconds": {n: round(statistics.median(r.seconds[n] for r in runs), 4) for n in names},
        "marks_per_call": dict(runs[0].counts),
    }


def _device_prep_groups(device_plan, paths) -> list:
    from m1vision.inference._device_runner import group_by_shape

    return group_by_shape([device_plan.decode(p) for p in paths])


def markdown(result: dict) -> str:
    """The rows of a result file for docs/benchmarks.md (Markdown), the machine named."""
    m = result["machine"]
    mb = result.get("mobilenetv2", {})
    lines = [
        (
            f"Machine: {m.get('gpu') or 'no GPU'}, {m['cpu_count']} CPU cores, {m['platform']}, "
            f"Python {m['python']}, {m.get('backend_version', '')}, Keras {m['keras']} "
            f"(backend {m['keras_backend']}), NumPy {m['numpy']}. Run: {result['run']}. "
            "Not Metal: nothing here was run on a Mac."
        ),
        "",
        (
            f"| MobileNetV2 {mb.get('size')}x{mb.get('size')}, {mb.get('rows', [{}])[0].get('n')} "
            f"16-bit {mb.get('png')}x{mb.get('png')} PNG files | batch | img/s | ratio | target |"
        ),
        "|---|---|---|---|---|",
    ]
    for r in mb.get("rows", []):
        if "prepare_on" in r or "pob_device_ips" not in r:
            continue
        bs = r["batch_size"]
        lines.append(
            f"| predict_on_batch, ready device tensors | {bs} | {r['pob_device_ips']} | 1 | |"
        )
        for where in ("cpu", "device"):
            lines += [
                (
                    f"| Predictor.predict(files), prepare_on={where!r} / predict_on_batch "
                    f"(ready device tensors) | {bs} | {r[f'predictor_{where}_ips']} | "
                    f"{r[f'predictor_{where}_vs_pob']}x | >= 0.9x |"
                ),
                (
                    f"| prepare_on={where!r}: overlapped / slower stage alone | {bs} | prep "
                    f"{r[f'prep_{where}_ips']}, infer {r[f'infer_{where}_ips']} | "
                    f"{r[f'overlap_{where}']}x | <= 1.1x |"
                ),
            ]
        if "workers_sweep_ips" in r:
            sweep = ", ".join(f"{n}: {v}" for n, v in r["workers_sweep_ips"].items())
            lines.append(
                f"| prepare_on='device' by worker count (workers: img/s) | {bs} | {sweep} | | |"
            )
        if "predictor_device_in_turn_ips" in r:
            lines.append(
                f"| prepare_on='device', each batch staged between two batches (no staging "
                f"thread) / predict_on_batch | {bs} | {r['predictor_device_in_turn_ips']} | "
                f"{r['predictor_device_in_turn_vs_pob']}x | |"
            )
    lines += [
        "",
        (
            "Executors: "
            + "; ".join(
                f"batch {r['batch_size']}: {r['executor_device']}" for r in mb.get("rows", [])
            )
        ),
        "",
        (
            "prepare_on='device' vs 'cpu': "
            + "; ".join(
                f"batch {r['batch_size']}: top-1 agrees on {r['top1_agree_device_vs_cpu']} of "
                f"{r['n']}, max |probability difference| {r['max_abs_diff_device_vs_cpu']:.2g}, "
                f"max |model input difference| {r.get('max_abs_diff_inputs_device_vs_cpu', 0):.2g}"
                for r in mb.get("rows", [])
            )
        ),
    ]
    acc = result.get("lesion_vs_tensorflow_cpu")
    if acc:
        lines += [
            "",
            "| the shipped lesion_cnn.keras on the GPU vs TensorFlow on a CPU | TF32 on | off |",
            "|---|---|---|",
        ]
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
    st = result.get("selftest")
    if st:
        lines += [
            "",
            (
                f"Numerics self-test relative error: {st['tf32_on']['relative_error']:.2g} "
                f"(TF32 on), {st['tf32_off']['relative_error']:.2g} (off); "
                f"select_device('auto'): {st['select_device_auto']['reason']}."
            ),
        ]
    if "grad_cam_lesion_ms" in result:
        lines.append(
            f"Grad-CAM per image: {result['grad_cam_lesion_ms']} ms (lesion_cnn 128x128), "
            f"{result['grad_cam_mobilenetv2_ms']} ms (MobileNetV2)."
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--make-ref", type=Path, help="write TensorFlow CPU references here")
    parser.add_argument("--ref", type=Path, help="the --make-ref folder (else no accuracy part)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=None, help="default: the Predictor's")
    parser.add_argument("--executor", default="auto", help="auto (default), threads, processes")
    parser.add_argument("--device", default="gpu", help="gpu (default) or cpu, to try it out")
    parser.add_argument("--markdown", type=Path, help="print the Markdown rows of a result file")
    parser.add_argument(
        "--stages", action="store_true", help="also time each stage of the device runner"
    )
    parser.add_argument(
        "--workers-sweep",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[],
        help="also time prepare_on='device' with each of these worker counts, e.g. 15,12,9",
    )
    args = parser.parse_args(argv)
    if args.make_ref:
        make_ref(args.make_ref)
        return 0
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text("utf-8"))), end="")
        return 0
    import keras
    import numpy as np

    torch = _torch()
    backend = keras.config.backend()
    gpu = None
    if torch is not None and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
    out = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "gpu": gpu,
            "backend_version": f"{backend} {_backend_version(backend)}",
            "torch": torch.__version__ if torch is not None else None,
            "keras": keras.__version__,
            "keras_backend": backend,
            "numpy": np.__version__,
            "workers": args.workers,
        },
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    steps = [
        ("selftest", lambda: selftests(out, args.device)),
        (
            "speed",
            lambda: speed(
                out,
                quick=args.quick,
                workers=args.workers,
                device=args.device,
                executor=args.executor,
                stages=args.stages,
                workers_sweep=args.workers_sweep,
            ),
        ),
    ]
    if args.ref:
        steps.insert(0, ("accuracy", lambda: accuracy(args.ref, out, args.device)))
    failed = False
    for name, step in steps:
        start = time.perf_counter()
        try:
            step()
        except Exception as exc:  # one failing part must not lose the others' figures
            import traceback

            out[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            failed = True
        out[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
        print(name, "done", out[f"{name}_seconds"], "s", flush=True)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "gpu_inference.json").write_text(json.dumps(out, indent=2), "utf-8")
    if args.out:
        (args.out / "gpu_inference.md").write_text(markdown(out), "utf-8")
    print(json.dumps(out, indent=2))
    return 1 if failed else 0


def _backend_version(backend: str) -> str:
    import importlib

    module = importlib.import_module(backend)
    return getattr(module, "__version__", "?")


if __name__ == "__main__":
    raise SystemExit(main())
