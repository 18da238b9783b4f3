"""How fast, and in how much memory, does the Segmenter segment a CT on the CPU?

A CT-like volume (``ct_phantom``, HU) of 80 x 256 x 256 voxels (a moderate size, so that
``make bench`` stays short on a 2-core machine; ``--quick``: 16 x 48 x 48) and the small 3-D
U-Net of ``benchmarks/gpu_segment.py`` (fixed-seed random weights, 4 classes, 64^3 windows;
``--quick``: 8 x 16 x 16). Each run is a fresh process (the Keras backend of ``make bench``,
TensorFlow by default, on the CPU), so its peak RSS is its own:

* ``Segmenter(mode="patches", overlap=0.5, blend="gaussian")`` from the HU volume (the model
  card's intensity) to the label map: seconds, windows per second, peak RSS, the RSS before
  ``segment`` (Python, the backend, the model and the volume) and what ``segment`` added,
  against :meth:`Segmenter.estimate_memory` (what ``max_memory`` is checked against);

The GPU comparison with MONAI is ``benchmarks/gpu_segment.py``, run on the accelerator
machine; when its result is stored as ``benchmarks/results/gpu_segment.json`` its rows are
added here with that machine's name.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

GPU_RESULTS = HERE / "results" / "gpu_segment.json"

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
import gpu_segment as g
from m1vision.inference import Segmenter
vol = g._volume({shape!r})
model = g.unet3d({window!r}, 4)
seg = Segmenter(model, mode="patches", batch_size=2, device="cpu", card=g.CARD, tta={tta!r})
seg.segment(g._volume([w + 2 for w in {window!r}]))  # warm-up: the model's first call
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
out = seg.segment(vol)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{
    "seconds": seconds, "windows": out.metadata["segmentation"]["windows"],
    "peak_rss_mib": peak / 1024, "before_mib": base / 1024,
    "estimate_mib": seg.estimate_memory(vol) / 2**20, "backend": seg._fn.backend,
}}))
"""


def _child(shape, window, tta: bool) -> dict:
    code = _CHILD.format(here=str(HERE), shape=list(shape), window=tuple(window), tta=tta)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        raise RuntimeError(f"the Segmenter run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gpu_rows() -> list[list]:
    if not GPU_RESULTS.is_file():
        return []
    stored = json.loads(GPU_RESULTS.read_text(encoding="utf-8"))
    c = stored["compare"]
    machine = c.get("gpu") or c.get("device")
    shape = "x".join(str(n) for n in reversed(c["shape"]))
    rows = []
    for name, key in [
        ("m1vision Segmenter (host volume -> host labels)", "segmenter"),
        ("MONAI sliding_window_inference (host -> host)", "monai_host"),
        ("MONAI sliding_window_inference (tensor ready on the GPU)", "monai_ready"),
    ]:
        rows.append(
            [
                f"{machine}, {stored['date'][:10]}",
                name,
                shape,
                c[f"{key}_s"],
                "",
                c.get(f"{key}_peak_gpu_mib", ""),
                "",
            ]
        )
    return rows


def run(*, quick: bool = False) -> dict:
    shape = (16, 48, 48) if quick else (80, 256, 256)
    window = (8, 16, 16) if quick else (64, 64, 64)
    here = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores"
    rows = []
    plain = _child(shape, window, tta=False)
    cases = [("Segmenter patches, gaussian, overlap 0.5", plain)]
    size = "x".join(str(n) for n in reversed(shape))
    for name, r in cases:
        rows.append(
            [
                f"{here} ({r['backend']}, CPU)",
                name,
                size,
                r["seconds"],
                r["windows"] / r["seconds"],
                r["peak_rss_mib"],
                r["peak_rss_mib"] - r["before_mib"],
            ]
        )
    rows += _gpu_rows()
    added = plain["peak_rss_mib"] - plain["before_mib"]
    return {
        "title": f"Segmentation (3-D U-Net, {size} CT on the CPU; MONAI on the GPU if stored)",
        "columns": [
            "machine",
            "method",
            "volume",
            "seconds",
            "windows/s",
            "peak memory MiB (RSS on CPU, GPU allocated)",
            "added by segment MiB",
        ],
        "rows": rows,
        "targets": [
            {
                "name": "memory added by segment / Segmenter.estimate_memory",
                "value": added / plain["estimate_mib"],
                "target": "<= 1.5 (+ 32 MiB allocator slack): the documented budget holds",
                "met": added <= 1.5 * plain["estimate_mib"] + 32,
            }
        ],
        "notes": (
            f"A moderate volume ({size}) so the run stays short here; one fresh process per "
            "run, timed after a warm-up call. Peak RSS includes Python, the Keras backend and "
            "the model; 'added' is the peak during segment() less the peak before it, the "
            f"estimate {plain['estimate_mib']:.0f} MiB is Segmenter.estimate_memory. GPU rows: "
            "benchmarks/gpu_segment.py on the accelerator machine (stored result)."
        ),
    }


if __name__ == "__main__":
    result = run(quick="--quick" in sys.argv)
    for row in result["rows"]:
        print(row)
    for t in result["targets"]:
        print(t)
