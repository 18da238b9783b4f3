"""How much memory, and how long, does the Segmenter take to segment a CT on the CPU?

The small 3-D U-Net of ``benchmarks/gpu_segment.py`` (fixed-seed random weights, 4 classes,
64^3 windows, batch 2) over ``ct_phantom`` volumes in HU (the model card's intensity), on the
Keras backend of ``make bench`` (TensorFlow by default) on the CPU; each run is a fresh process
(timed after a warm-up call), so its memory is its own:

* **512 x 512 x 300** (a full CT), overlap 0, Gaussian: the memory figure of
  ``docs/segmentation.md``. Peak RSS during ``segment``, the RSS just before it (Python, the
  backend, the model and the 300 MiB volume) and what ``segment`` added, against
  :meth:`Segmenter.estimate_memory` (what ``max_memory`` is checked against), the blend's
  accumulators (``4 * (classes + 1)`` bytes per voxel) and the volume. Overlap 0 keeps it to
  a few minutes on 2 cores (320 windows; 0.5 would be 8x the windows and the same memory);
* **192 x 192 x 64** at overlap 0.5 and at overlap 0: the memory does not depend on the
  overlap (the windows are cut and batched lazily), the time does.

``--quick`` (the tests): 48 x 48 x 16 at both overlaps, 8 x 16 x 16 windows. On Linux the
peak is the process's high-water mark reset just before ``segment`` (``/proc/self/clear_refs``),
so nothing before it (the phantom's making, the model's building) counts; elsewhere it is
``ru_maxrss`` against its value before ``segment``.

The GPU comparison with MONAI is ``benchmarks/gpu_segment.py``, run on the accelerator
machine; when its result is stored as ``benchmarks/results/gpu_segment.json`` its rows are
added here with that machine's name.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks._common import print_section  # noqa: E402

GPU_RESULTS = HERE / "results" / "gpu_segment.json"
CLASSES = 4

_CHILD = """
import gc, json, os, resource, sys, time
sys.path.insert(0, {here!r})
import gpu_segment as g
from m1vision.inference import Segmenter

def status_mib(key):  # VmRSS / VmHWM from /proc/self/status (Linux), None elsewhere
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None

def maxrss_mib():  # ru_maxrss: KiB on Linux, bytes on macOS
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024

vol = g._volume({shape!r})
model = g.unet3d({window!r}, {classes!r})
seg = Segmenter(model, mode="patches", overlap={overlap!r}, batch_size=2, device="cpu",
                card=g.CARD)
seg.segment(g._volume([w + 2 for w in {window!r}]))  # warm-up: the model's first call
gc.collect()
before = status_mib("VmRSS")
try:  # reset the high-water mark: only what happens from here counts
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = status_mib("VmHWM") is not None
except OSError:
    reset = False
if not reset:
    before = maxrss_mib()
t = time.perf_counter()
out = seg.segment(vol)
seconds = time.perf_counter() - t
peak = status_mib("VmHWM") if reset else maxrss_mib()
n = vol.pixels.size
print(json.dumps({{
    "seconds": seconds, "windows": out.metadata["segmentation"]["windows"],
    "peak_rss_mib": peak, "before_mib": before, "added_mib": peak - before,
    "peak_reset": reset, "process_peak_mib": maxrss_mib(),
    "estimate_mib": seg.estimate_memory(vol) / 2**20,
    "accumulators_mib": 4 * ({classes!r} + 1) * n / 2**20,
    "volume_mib": vol.pixels.nbytes / 2**20, "backend": seg._fn.backend,
}}))
"""


def _child(shape, window, overlap: float) -> dict:
    code = _CHILD.format(
        here=str(HERE), shape=list(shape), window=tuple(window), overlap=overlap, classes=CLASSES
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        raise RuntimeError(f"the Segmenter run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _machine_name() -> str:
    """The CPU and cores (``bench_scaling.machine_name``: one home for naming this machine)."""
    spec = importlib.util.spec_from_file_location("bench_scaling", HERE / "bench_scaling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.machine_name()


def _gpu_rows() -> list[list]:
    if not GPU_RESULTS.is_file():
        return []
    stored = json.loads(GPU_RESULTS.read_text(encoding="utf-8"))
    c = stored["compare"]
    machine = c.get("gpu") or c.get("device")
    rows = []
    for name, key in [
        ("m1vision Segmenter (host volume -> host labels)", "segmenter"),
        ("MONAI sliding_window_inference (host -> host)", "monai_host"),
        ("MONAI sliding_window_inference (tensor ready on the GPU)", "monai_ready"),
    ]:
        row = [f"{machine}, {stored['date'][:10]}", name, _size(c["shape"]), "", c[f"{key}_s"]]
        rows.append([*row, "", c.get(f"{key}_peak_gpu_mib", ""), "", "", "", "", ""])
    return rows


def _size(shape) -> str:
    return " x ".join(str(n) for n in reversed(shape))


def run(*, quick: bool = False) -> dict:
    # --quick (the tests) measures one size: its overlap-0 run serves both cases (2 processes)
    full, small = ((16, 48, 48), (16, 48, 48)) if quick else ((300, 512, 512), (64, 192, 192))
    window = (8, 16, 16) if quick else (64, 64, 64)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    big = _child(full, window, 0.0)
    lazy = {0.5: _child(small, window, 0.5), 0.0: big if small == full else None}
    if lazy[0.0] is None:
        lazy[0.0] = _child(small, window, 0.0)
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    here = f"{_machine_name()} ({big['backend']}, CPU)"
    cases = [(full, 0.0, big), (small, 0.5, lazy[0.5]), (small, 0.0, lazy[0.0])]
    rows = [
        [
            here,
            f"Segmenter patches, gaussian, overlap {overlap}",
            _size(shape),
            r["windows"],
            r["seconds"],
            r["windows"] / r["seconds"],
            r["peak_rss_mib"],
            r["before_mib"],
            r["added_mib"],
            r["estimate_mib"],
            r["accumulators_mib"],
            r["volume_mib"],
        ]
        for shape, overlap, r in cases
    ]
    rows += _gpu_rows()
    spread = abs(lazy[0.5]["added_mib"] - lazy[0.0]["added_mib"])
    loads = (
        f" Load average (1, 5, 15 min) {', '.join(f'{v:.2f}' for v in load)} before, "
        f"{', '.join(f'{v:.2f}' for v in load_after)} after (2 shared cores)."
        if load
        else ""
    )
    return {
        "title": (
            f"Segmentation memory and speed (3-D U-Net, {_size(full)} CT on the CPU; MONAI on "
            "the GPU if stored)"
        ),
        "columns": [
            "machine",
            "method",
            "volume",
            "windows",
            "seconds",
            "windows/s",
            "peak memory MiB (RSS on CPU, GPU allocated)",
            "RSS before segment MiB",
            "added by segment MiB",
            "estimate_memory MiB",
            "accumulators MiB",
            "volume MiB",
        ],
        "rows": rows,
        "targets": [
            {
                "name": f"memory added by segment / Segmenter.estimate_memory ({_size(full)})",
                "value": big["added_mib"] / big["estimate_mib"],
                "target": "<= 1.5 (+ 32 MiB allocator slack): the documented budget holds",
                "met": big["added_mib"] <= 1.5 * big["estimate_mib"] + 32,
            },
            {
                "name": f"memory added at overlap 0.5 less at overlap 0 ({_size(small)}), MiB",
                "value": lazy[0.5]["added_mib"] - lazy[0.0]["added_mib"],
                "target": "|difference| <= 32 MiB: the memory does not depend on the overlap",
                "met": spread <= 32,
            },
        ],
        "notes": (
            "One fresh process per run, timed after a warm-up call. 'RSS before segment' is "
            "Python, the Keras backend, the model and the volume; 'added' is the peak RSS during "
            "segment() less the RSS before it (on Linux the high-water mark is reset just "
            "before segment); 'accumulators' is the blend's float32 (classes + 1) x volume, "
            "the volume one float32 copy. The estimate leaves out the model's activations for "
            f"one batch of windows.{loads} GPU rows: benchmarks/gpu_segment.py on the "
            "accelerator machine (stored result)."
        ),
    }


if __name__ == "__main__":
    print_section(run(quick="--quick" in sys.argv))
