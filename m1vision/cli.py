"""The command line: ``python -m m1vision COMMAND`` (also installed as ``m1vision``).

Commands import what they need when they run, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="m1vision",
        description="OpenCV + TensorFlow image pipelines for medical images on Apple Silicon.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = sub.add_parser(
        "doctor", help="check that the stack runs natively (Rosetta, wheels, BLAS, Metal)"
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument(
        "--no-tensorflow",
        action="store_true",
        help="skip the TensorFlow checks (answers in about a second)",
    )
    doctor.add_argument("--out", default=None, help="also write the JSON report to this file")

    demo = sub.add_parser("demo", help="run the main job on the bundled sample data")
    demo.add_argument("--out", default="outputs", help="output folder (default: outputs)")

    segment = sub.add_parser(
        "segment",
        help="segment series folders, NIfTI files and multi-frame DICOMs with a Keras model",
    )
    segment.add_argument("inputs", nargs="+", help="files and folders (scanned recursively)")
    segment.add_argument("--model", required=True, help="the .keras file (its card beside it)")
    segment.add_argument("--out", required=True, help="output folder")
    segment.add_argument(
        "--format", choices=["nifti", "seg"], default="nifti", help="NIfTI + sidecar or DICOM SEG"
    )
    segment.add_argument("--stats", action="store_true", help="write <case>.stats.csv per case")
    segment.add_argument("--part", default=None, help="I/N: this machine's share of the inputs")
    segment.add_argument("--mode", choices=["slices", "patches"], default=None)
    segment.add_argument("--overlap", type=float, default=0.5)
    segment.add_argument("--blend", choices=["gaussian", "constant"], default="gaussian")
    segment.add_argument("--batch-size", type=int, default=4)
    segment.add_argument("--tta", action="store_true", help="mirroring test-time augmentation")
    segment.add_argument("--device", choices=["auto", "gpu", "cpu"], default="auto")
    segment.add_argument("--workers", type=int, default=None, help="threads (default 1)")
    segment.add_argument("--overwrite", action="store_true", help="recompute every case")
    segment.add_argument("--no-progress", action="store_true", help="no progress bar")

    audit = sub.add_parser(
        "audit",
        help="audit a folder of DICOM files: series, geometry, duplicates, unreadable files",
    )
    audit.add_argument("root", help="the folder holding the collection (searched recursively)")
    audit.add_argument(
        "--out", default="audit", help="folder for audit.csv, audit.json and the pictures"
    )
    audit.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: one per core)"
    )
    audit.add_argument("--overwrite", action="store_true", help="replace an earlier audit")
    audit.add_argument("--no-progress", action="store_true", help="no progress bar")

    stats = sub.add_parser(
        "stats", help="label statistics of a folder of images and label maps, as one CSV"
    )
    stats.add_argument("images", help="folder of images (NIfTI volumes)")
    stats.add_argument("labels", help="folder of label maps (NIfTI or DICOM SEG)")
    stats.add_argument("--out", required=True, help="the CSV to write")
    stats.add_argument(
        "--overwrite", action="store_true", help="replace a CSV no run of this job wrote"
    )
    stats.add_argument(
        "--match",
        default="{case}",
        help="a label file's name with {case} for its image's (default {case}; e.g. {case}_seg)",
    )

    reproduce = sub.add_parser("reproduce", help="re-run an experiment record and compare")
    reproduce.add_argument("record", help="path of a record JSON written by experiment.record")
    return parser


#: What a Ctrl-C leaves behind, per command (a command not named here writes nothing).
_INTERRUPTED = {
    "segment": (
        "the cases finished so far are kept and recorded in the output folder's manifest, "
        "nothing is half-written. Run the same command again to do the rest: finished cases "
        "are skipped."
    ),
    "stats": (
        "the cases measured so far are recorded in the manifest beside --out, nothing is "
        "half-written. Run the same command again to do the rest: measured cases are skipped."
    ),
    "audit": (
        "the audit's files written before it, if any, are whole. Run the same command again "
        "(with --overwrite if it says some exist)."
    ),
}

#: The options messages name as Python arguments, and their flags, per command.
_FLAGS = {
    "segment": {
        "overwrite=True": "--overwrite",
        "format='nifti'": "--format nifti",
        "mode='slices'": "--mode slices",
        "mode='patches'": "--mode patches",
        "part=": "--part I/N",
    },
    "stats": {"overwrite=True": "--overwrite", "match=": "--match"},
    "audit": {"overwrite=True": "--overwrite"},
}


def _say_flags(command: str, message: str) -> None:
    """After an error whose fix names Python arguments, the flags that give them here."""
    said = [f"{arg} is {flag}" for arg, flag in _FLAGS[command].items() if arg in message]
    if said:
        print(f"  (on the command line: {'; '.join(said)})", file=sys.stderr)


#: Exit status after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        done = _INTERRUPTED.get(args.command, "nothing more was written.")
        print(f"\nm1vision {args.command}: interrupted (Ctrl-C); {done}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args) -> int:
    if args.command == "doctor":
        from m1vision.doctor import run_cli

        return run_cli(as_json=args.json, tensorflow=not args.no_tensorflow, out=args.out)
    if args.command == "demo":
        from m1vision.demo import run

        return run(out_dir=args.out)
    if args.command == "segment":
        return _segment(args)
    if args.command == "audit":
        return _audit(args)
    if args.command == "stats":
        from m1vision.cohort import stats_folder
        from m1vision.errors import M1VisionError

        try:
            report = stats_folder(
                args.images,
                args.labels,
                args.out,
                match=args.match,
                overwrite=args.overwrite,
                progress=sys.stderr.isatty(),
            )
        except M1VisionError as exc:
            print(f"m1vision stats: {type(exc).__name__}: {exc}", file=sys.stderr)
            _say_flags("stats", str(exc))
            return 2
        print(str(report))
        print(f"wrote {report.csv} ({len(report.table.rows)} rows)")
        return 1 if report.failed else 0
    if args.command == "reproduce":
        from m1vision.experiment import reproduce_cli

        return reproduce_cli(args.record)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects others


def _segment(args) -> int:
    """Segment the inputs into --out; a bad model or option prints why and returns 2."""
    from m1vision.errors import M1VisionError
    from m1vision.inference import Segmenter

    try:
        segmenter = Segmenter(
            args.model,
            mode=args.mode,
            overlap=args.overlap,
            blend=args.blend,
            batch_size=args.batch_size,
            tta=args.tta,
            device=args.device,
        )
        report = segmenter.segment_folder(
            args.inputs,
            args.out,
            format=args.format,
            stats=args.stats,
            workers=args.workers,
            part=args.part,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except M1VisionError as exc:
        print(f"m1vision segment: {type(exc).__name__}: {exc}", file=sys.stderr)
        _say_flags("segment", str(exc))
        return 2
    print(report)
    for item in report.failed:
        print(f"failed: {item.key}: {item.error}", file=sys.stderr)
    _say_flags("segment", " ".join(item.error or "" for item in report.failed))
    return 1 if report.failed else 0


def _audit(args) -> int:
    """Print the audit's table, write its files; a bad root prints why and returns 2."""
    from m1vision.errors import M1VisionError
    from m1vision.io import audit
    from m1vision.io._audit_report import check_out

    try:
        check_out(args.out, overwrite=args.overwrite)  # refuse before the work, not after
        report = audit(args.root, workers=args.workers, progress=not args.no_progress)
        paths = report.write(args.out, overwrite=args.overwrite)
    except M1VisionError as exc:
        print(f"m1vision audit: {exc}", file=sys.stderr)
        _say_flags("audit", str(exc))
        return 2
    print(report)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
