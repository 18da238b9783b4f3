"""What the demo training scripts (``train_demo_model.py``, ``train_demo_segmenter.py``) share:
seeding TensorFlow for deterministic training, refusing to replace outputs, the command line.

Not a script: each training script imports it from beside itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from m1vision.errors import OutputExistsError


def configure_tensorflow(seed: int, threads: int) -> None:
    """Seed Python, NumPy and TensorFlow with ``seed`` (``keras.utils.set_random_seed``), make
    TensorFlow's ops deterministic and run them on ``threads`` threads (one inter-op)."""
    import keras
    import tensorflow as tf

    try:  # only possible before TensorFlow starts its thread pools
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def refuse_existing(paths: dict[str, Path], out: Path) -> None:
    """Raise ``OutputExistsError`` naming the files of ``paths`` that exist already."""
    existing = [p.name for p in paths.values() if p.exists()]
    if existing:
        raise OutputExistsError(
            f"{', '.join(existing)} exist(s) already in {str(Path(out))!r}; pass "
            "--overwrite to replace them, or choose another --out folder."
        )


def main(
    argv: list[str] | None,
    doc: str,
    output_paths: Callable[[Path], dict[str, Path]],
    train: Callable,
    write_outputs: Callable,
    summary: Callable[[dict], str],
) -> int:
    """The command line of a training script (``doc``: its docstring): ``--out``,
    ``--overwrite``, ``--verbose``.

    Refuses (exit status 1) before training when an output exists and ``--overwrite`` is not
    given; else trains, writes, and prints ``summary(metrics)`` with the time and model size.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--verbose", action="store_true", help="show Keras' progress")
    args = parser.parse_args(argv)
    paths = output_paths(args.out)
    if not args.overwrite and any(p.exists() for p in paths.values()):
        existing = ", ".join(p.name for p in paths.values() if p.exists())
        print(
            f"error: {existing} exist(s) already in {args.out}; pass --overwrite to replace.",
            file=sys.stderr,
        )
        return 1
    model, metrics = train(verbose=2 if args.verbose else 0)
    write_outputs(model, metrics, args.out, overwrite=args.overwrite)
    size_kb = paths["model"].stat().st_size / 1024
    print(
        f"{summary(metrics)}, training {metrics['training_seconds']} s, "
        f"model {size_kb:.0f} KB -> {args.out}"
    )
    return 0
