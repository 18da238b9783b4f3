"""3-D segmentation on a GPU: m1vision's Segmenter vs MONAI's sliding_window_inference.

    KERAS_BACKEND=torch python benchmarks/gpu_segment.py --out DIR [--quick] [--device cpu]

Run on the accelerator machine (CI and ``make bench`` do not: it needs torch, MONAI and a
GPU). Needs python3 with torch, keras, monai and m1vision's dependencies; nothing else (no
TensorFlow), nothing downloaded. Writes ``DIR/gpu_segment.json`` and prints it.

The model is a small 3-D U-Net (two poolings, 8-16-32 filters, softmax over ``--classes``)
built here with random weights of a fixed seed; the volume is :func:`m1vision.synthetic.
ct_phantom` of ``--shape`` (default 300 x 512 x 512, HU). Both methods run the same Keras
model (on the torch backend a ``torch.nn.Module``) with the same window, overlap 0.5 and
Gaussian blending (sigma_scale 0.125) and the same input: HU clipped to [-1000, 1000] / 1000
(the Segmenter's model card intensity ``{"clip", "std"}``, applied on the device; for MONAI
done once beforehand). Measured, each the median of ``--repeats`` runs after a warm-up:

* ``segmenter``: ``Segmenter.segment(volume)`` from the NumPy HU volume on the host to the
  label map on the host (upload, preparation, windows, blending and argmax on the device);
* ``monai_host``: the same contract with MONAI: upload the prepared volume,
  ``sliding_window_inference``, argmax, download;
* ``monai_ready``: ``sliding_window_inference`` alone on the prepared tensor already on the
  GPU (its best case);
* max abs difference of the probabilities (Segmenter ``probabilities=True`` vs MONAI's
  output) and the fraction of voxels whose label differs;
* peak GPU memory of each (``torch.cuda.max_memory_allocated``);
* the Segmenter on the CPU in a fresh process, on the torch backend: seconds and peak RSS
  (default the same volume with ``--cpu-overlap 0``: the memory does not depend on the
  overlap, the time does; ``--cpu-shape`` and ``--cpu-timeout`` bound it). The memory figure
  of the docs is ``bench_segment.py``'s (TensorFlow, what ``segment`` adds, on any machine).

Give MONAI to that python first (``pip install monai``; it is no m1vision dependency). The
GPU part takes about a minute or two on an H100/H200 at the default size; the CPU part a
few minutes on 16 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 0


def unet3d(window, classes: int):
    """A small 3-D U-Net (fixed-seed random weights): the benchmark's model."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((*window, 1))

    def block(x, filters):
        x = layers.Conv3D(filters, 3, padding="same", activation="relu")(x)
        return layers.Conv3D(filters, 3, padding="same", activation="relu")(x)

    d1 = block(inputs, 8)
    d2 = block(layers.MaxPooling3D(2)(d1), 16)
    bottom = block(layers.MaxPooling3D(2)(d2), 32)
    u2 = block(layers.Concatenate()([layers.UpSampling3D(2)(bottom), d2]), 16)
    u1 = block(layers.Concatenate()([layers.UpSampling3D(2)(u2), d1]), 8)
    outputs = layers.Conv3D(classes, 1, activation="softmax")(u1)
    return keras.Model(inputs, outputs, name="unet3d_bench")


CARD = {"intensity": {"clip": [-1000.0, 1000.0], "std": 1000.0}}


def _volume(shape):
    from m1vision.io import MedicalImage
    from m1vision.synthetic import ct_phantom

    return MedicalImage(
        ct_phantom(tuple(shape), seed=SEED), spacing=(1.0, 0.8, 0.8), metadata={"layout": "volume"}
    )


def _median_time(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def compare(args) -> dict:
    import numpy as np
    import torch
    from monai.inferers import sliding_window_inference

    from m1vision.inference import Segmenter, select_device

    device = select_device(args.device)
    window = tuple(args.window)
    model = unet3d(window, args.classes)
    seg = Segmenter(
        model,
        mode="patches",
        overlap=0.5,
        blend="gaussian",
        batch_size=args.batch,
        device=device,
        card=CARD,
    )
    vol = _volume(args.shape)
    dev = torch.device(device.name)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    prepared = np.clip(vol.pixels, -1000, 1000) / np.float32(1000)

    def predictor(x):  # MONAI gives (N, C, D, H, W); the Keras model is channels-last
        return model(x.permute(0, 2, 3, 4, 1), training=False).permute(0, 4, 1, 2, 3)

    def monai_run(x):
        with torch.no_grad():
            return sliding_window_inference(
                x, window, args.batch, predictor, overlap=0.5, mode="gaussian", sigma_scale=0.125
            )

    def monai_host():
        x = torch.from_numpy(prepared[None, None]).to(dev)
        out = monai_run(x)
        return torch.argmax(out[0], dim=0).to(torch.uint8).cpu().numpy()

    ready = torch.from_numpy(prepared[None, None]).to(dev)
    result = {
        "device": device.name,
        "device_reason": device.reason,
        "gpu": torch.cuda.get_device_name(dev) if cuda else None,
        "shape": list(args.shape),
        "window": list(window),
        "classes": args.classes,
        "batch": args.batch,
        "repeats": args.repeats,
        "parameters": int(model.count_params()),
        "blended_on": None,
    }
    methods = {
        "segmenter": lambda: seg.segment(vol),
        "monai_host": monai_host,
        "monai_ready": lambda: monai_run(ready),
    }
    for name, fn in methods.items():
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        result[f"{name}_s"] = _median_time(fn, args.repeats, sync)
        if cuda:
            result[f"{name}_peak_gpu_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    result["segmenter_vs_monai_host"] = result["monai_host_s"] / result["segmenter_s"]
    result["segmenter_vs_monai_ready"] = result["monai_ready_s"] / result["segmenter_s"]
    ours = seg.segment(vol, probabilities=True)
    result["blended_on"] = ours.metadata["segmentation"]["blended_on"]
    theirs = monai_run(ready)[0].float().cpu().numpy()
    result["max_abs_difference"] = float(np.abs(ours.pixels - theirs).max())
    labels_ours = seg.segment(vol).pixels
    labels_theirs = monai_host()
    result["labels_differing_fraction"] = float((labels_ours != labels_theirs).mean())
    return result


def cpu_rss(shape, window, classes, batch, overlap, timeout) -> dict:
    """The Segmenter on the CPU in a fresh process: seconds and peak RSS.

    The memory figure does not depend on the overlap (the accumulators are the volume's size),
    the time does (8x the windows at 0.5 in 3-D): ``--cpu-overlap`` (default 0) keeps it short.
    """
    code = (
        "import json, resource, sys, time\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "import gpu_segment as g\n"
        "from m1vision.inference import Segmenter\n"
        f"vol = g._volume({list(shape)!r})\n"
        f"model = g.unet3d({tuple(window)!r}, {classes})\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"seg = Segmenter(model, mode='patches', batch_size={batch}, device='cpu', card=g.CARD,\n"
        f"                overlap={overlap})\n"
        "t = time.perf_counter(); out = seg.segment(vol); t = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'seconds': t, 'peak_rss_mib': peak / 1024,\n"
        "    'rss_before_segment_mib': base / 1024,\n"
        "    'estimate_mib': seg.estimate_memory(vol) / 2**20,\n"
        "    'volume_mib': vol.pixels.nbytes / 2**20, 'shape': list(vol.shape),\n"
        f"    'overlap': {overlap}}}))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s; pass a smaller --cpu-shape"}
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--shape", type=int, nargs=3, default=[300, 512, 512])
    parser.add_argument("--window", type=int, nargs=3, default=[96, 96, 96])
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="gpu", help="gpu (default) or cpu, to try it out")
    parser.add_argument("--cpu-shape", type=int, nargs=3, default=None)
    parser.add_argument("--cpu-overlap", type=float, default=0.0)
    parser.add_argument("--cpu-timeout", type=float, default=420.0)
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU peak-RSS run")
    parser.add_argument("--quick", action="store_true", help="a tiny volume, to try it out")
    args = parser.parse_args(argv)
    if os.environ.get("KERAS_BACKEND") != "torch":
        parser.error("run with KERAS_BACKEND=torch (MONAI needs the model as a torch module)")
    if args.quick:
        args.shape, args.window, args.repeats = [20, 40, 36], [8, 16, 16], 1
    import keras
    import monai
    import torch

    result = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
        },
        "versions": {
            "torch": torch.__version__,
            "keras": keras.__version__,
            "monai": monai.__version__,
        },
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
    }
    result["compare"] = compare(args)
    if not args.no_cpu:
        shape = args.cpu_shape or args.shape
        result["cpu"] = cpu_rss(
            shape, args.window, args.classes, args.batch, args.cpu_overlap, args.cpu_timeout
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_segment.json").write_text(json.dumps(result, indent=2), "utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
