"""Generate the small sample images in data/samples and their provenance in data/README.md.

    python tools/make_sample_data.py             # (re)write data/samples and data/README.md
    python tools/make_sample_data.py --check     # regenerate in a temporary folder; exit 1 if
                                                 # any committed file differs or is missing
    python tools/make_sample_data.py --out DIR   # write DIR/... and DIR/../README.md instead

Deterministic: the inputs are files inside installed wheels (pydicom, scikit-image), the
arithmetic is NumPy/scikit-image, noise comes from ``numpy.random.default_rng(seed)`` with a
fixed seed, and the encoders (OpenCV's libpng/libtiff/libjpeg) write no timestamps. Running it
twice gives byte-identical files on the same machine and library versions. Every file written
is listed in :data:`m1vision.data.SAMPLES` (origin "generated"); the script refuses to write a
file that is not, so the registry and the folder cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from m1vision import data  # noqa: E402
from m1vision._atomic import atomic_write_text  # noqa: E402
from m1vision.io import write_image  # noqa: E402
from m1vision.preprocess import WINDOW_PRESETS, window  # noqa: E402

BATCH_ANGLES = (0, 15, 30, 45, 60, 75)
NOISE_SIGMA = 0.02  # of the full range


def _hu_plus_1024(pixels: np.ndarray) -> np.ndarray:
    """HU + 1024 as uint16 (air -1000 HU -> 24, water -> 1024), clipped to 0..65535."""
    return np.clip(np.round(pixels.astype(np.float64) + 1024.0), 0, 65535).astype(np.uint16)


def _mr_u16(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.round(pixels.astype(np.float64)), 0, 65535).astype(np.uint16)


def _bone_color() -> np.ndarray:
    center, width = WINDOW_PRESETS["bone"]
    gray = window(data.ct_slice_512().pixels, center=center, width=width)
    gray = cv2.resize(gray, (256, 256), interpolation=cv2.INTER_AREA)
    return cv2.applyColorMap(gray, cv2.COLORMAP_BONE)


def _batch_phantom(angle: int) -> np.ndarray:
    from skimage.transform import rotate

    base = data.phantom(size=256, dtype=np.float32).astype(np.float64)
    turned = rotate(base, angle, order=1, mode="constant", cval=0.0, preserve_range=True)
    rng = np.random.default_rng(1000 + angle)
    noisy = np.clip(turned + rng.normal(0.0, NOISE_SIGMA, turned.shape), 0.0, 1.0)
    return np.round(noisy * 65535).astype(np.uint16)


#: file (relative to data/samples) -> (how it is made, in words; the function that makes it)
GENERATORS: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    "phantom_512_u16.png": (
        "m1vision.data.phantom(size=512, dtype=numpy.uint16)",
        lambda: data.phantom(size=512, dtype=np.uint16),
    ),
    "phantom_512_u16.tif": (
        "m1vision.data.phantom(size=512, dtype=numpy.uint16)",
        lambda: data.phantom(size=512, dtype=np.uint16),
    ),
    "phantom_256_u8.png": (
        "m1vision.data.phantom(size=256, dtype=numpy.uint8)",
        lambda: data.phantom(size=256, dtype=np.uint8),
    ),
    "ct_small_hu1024_u16.png": (
        "clip(round(m1vision.data.ct_slice().pixels + 1024), 0, 65535) as uint16",
        lambda: _hu_plus_1024(data.ct_slice().pixels),
    ),
    "ct_693_hu1024_u16.png": (
        "clip(round(m1vision.data.ct_slice_512().pixels + 1024), 0, 65535) as uint16",
        lambda: _hu_plus_1024(data.ct_slice_512().pixels),
    ),
    "mr_small_u16.png": (
        "clip(round(m1vision.data.mr_slice().pixels), 0, 65535) as uint16",
        lambda: _mr_u16(data.mr_slice().pixels),
    ),
    "ct_693_bone_color.jpg": (
        (
            "window(ct_slice_512, bone 400/1800) -> cv2.resize 256x256 INTER_AREA -> "
            "cv2.applyColorMap(COLORMAP_BONE), JPEG quality 95"
        ),
        _bone_color,
    ),
    **{
        f"batch/phantom_rot{a:03d}.png": (
            (
                f"phantom(size=256) rotated {a} deg (skimage.transform.rotate, order=1) + "
                f"Gaussian noise sigma={NOISE_SIGMA} (default_rng({1000 + a})), as uint16"
            ),
            lambda a=a: _batch_phantom(a),
        )
        for a in BATCH_ANGLES
    },
    "batch/ct_small.png": (
        "same as ct_small_hu1024_u16.png",
        lambda: _hu_plus_1024(data.ct_slice().pixels),
    ),
    "batch/mr_small.png": ("same as mr_small_u16.png", lambda: _mr_u16(data.mr_slice().pixels)),
}


def _registry_by_file() -> dict[str, data.SampleInfo]:
    return {info.file: info for info in data.SAMPLES.values() if info.origin == "generated"}


def generate(out: Path) -> list[Path]:
    """Write every generated sample into ``out`` (replacing what is there); return the paths."""
    registry = _registry_by_file()
    missing = sorted(set(GENERATORS) ^ set(registry))
    if missing:
        raise SystemExit(
            f"m1vision.data.SAMPLES and GENERATORS disagree about {missing}; "
            "add the file to both or to neither."
        )
    written = []
    for rel, (_, make) in GENERATORS.items():
        image = make()
        info = registry[rel]
        if tuple(image.shape) != info.shape or image.dtype.name != info.dtype:
            raise SystemExit(
                f"{rel}: generated {image.shape} {image.dtype}, but SAMPLES says "
                f"{info.shape} {info.dtype}; fix one of them."
            )
        written.append(write_image(out / rel, image, overwrite=True))
    return written


def render_readme(out: Path) -> str:
    """data/README.md: the provenance of every file in ``out``."""
    lines = [
        "# Sample data",
        "",
        "Everything here is small (well under 3 MB in all), made offline and deterministically by",
        "",
        "    python tools/make_sample_data.py          # rewrite",
        "    python tools/make_sample_data.py --check  # verify the committed bytes",
        "",
        "from files that ship inside installed wheels (pydicom's test files, scikit-image's",
        "Shepp-Logan phantom). Load them by name with `m1vision.data.sample_path(name)`; the",
        "registry `m1vision.data.SAMPLES` holds the same facts as this table. The DICOM and NIfTI",
        "originals are not copied here: `m1vision.data.ct_slice()`, `ct_slice_512()`,",
        "`mr_slice()`, `volume()` and `dose_volume()` read them from the installed packages.",
        "",
        "16-bit CT PNGs store HU + 1024 (so -1024 HU is 0 and water is 1024); subtract 1024",
        "after reading to get Hounsfield units back. The MR PNG stores the scanner values as",
        "they are. `batch/` is the input folder of the demo batch run.",
        "",
        "Licences: pydicom is MIT (its LICENSE has no separate terms for its test files;",
        "pydicom's `data/test_files/README.txt` says CT_small.dcm and MR_small.dcm were downsized",
        "from the NEMA WG04 sample images CT1_UNC and MR1_UNC, and rtdose.dcm came from a",
        "commercial treatment planning system). scikit-image is BSD-3-Clause (its LICENSE.txt",
        "lists no separate terms for `skimage/data/phantom.png`). nibabel is MIT.",
        "",
        "| file | shape, dtype | made by | source | licence |",
        "|---|---|---|---|---|",
    ]
    registry = _registry_by_file()
    for rel, (how, _) in GENERATORS.items():
        info = registry[rel]
        shape = "x".join(str(s) for s in info.shape)
        lines.append(
            f"| `samples/{rel}` | {shape} {info.dtype} | {how} | {info.source} | {info.licence} |"
        )
    total = sum((out / rel).stat().st_size for rel in GENERATORS if (out / rel).is_file())
    lines += [
        "",
        f"Total size of the generated files: {total / 1024:.0f} KiB. They are written with",
        "`m1vision.io.write_image` (PNG compression 6, JPEG quality 95). `--check` compares",
        "bytes, which hold for the locked library versions; other libpng/libjpeg builds may",
        "encode the same pixels differently (tests/test_data.py compares pixels).",
        "",
        "## Samples read from installed packages (not copied here)",
        "",
        "| name | loader | shape, dtype | source | licence |",
        "|---|---|---|---|---|",
    ]
    for info in data.SAMPLES.values():
        if info.origin != "generated":
            shape = "x".join(str(s) for s in info.shape)
            lines.append(
                f"| `{info.name}` | `m1vision.data.{info.loader}()` | {shape} {info.dtype} | "
                f"{info.source} | {info.licence} |"
            )
    lines.append("")
    return "\n".join(lines)


def check(committed: Path) -> int:
    """Regenerate into a temporary folder and compare bytes with ``committed``; 0 if equal."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "samples"
        generate(fresh)
        bad = []
        for rel in GENERATORS:
            old = committed / rel
            if not old.is_file():
                bad.append(f"{rel}: missing")
            elif old.read_bytes() != (fresh / rel).read_bytes():
                bad.append(f"{rel}: differs")
        readme = committed.parent / "README.md"
        if not readme.is_file() or readme.read_text(encoding="utf-8") != render_readme(fresh):
            bad.append("README.md: missing or out of date")
    extra = sorted(
        str(p.relative_to(committed))
        for p in committed.rglob("*")
        if p.is_file() and str(p.relative_to(committed)) not in GENERATORS
    )
    for rel in extra:
        print(f"note: {rel} is in {committed} but not generated by this script")
    for line in bad:
        print(f"out of date: {line}")
    if bad:
        print("run `python tools/make_sample_data.py` to regenerate.")
        return 1
    print(f"ok: {len(GENERATORS)} files and README.md are up to date")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=REPO / "data" / "samples", help="samples folder"
    )
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.out)
    paths = generate(args.out)
    atomic_write_text(args.out.parent / "README.md", render_readme(args.out), overwrite=True)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files ({total / 1024:.0f} KiB) to {args.out} and README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
