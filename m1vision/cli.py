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

    stats = sub.add_parser(
        "stats", help="label statistics of a folder of images and label maps, as one CSV"
    )
    stats.add_argument("images", help="folder of images (NIfTI volumes)")
    stats.add_argument("labels", help="folder of label maps (NIfTI or DICOM SEG)")
    stats.add_argument("--out", required=True, help="the CSV to write")
    stats.add_argument(
        "--match",
        default="{case}",
        help="a label file's name with {case} for its image's (default {case}; e.g. {case}_seg)",
    )

    reproduce = sub.add_parser("reproduce", help="re-run an experiment record and compare")
    reproduce.add_argument("record", help="path of a record JSON written by experiment.record")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "doctor":
        from m1vision.doctor import run_cli

        return run_cli(as_json=args.json, tensorflow=not args.no_tensorflow, out=args.out)
    if args.command == "demo":
        from m1vision.demo import run

        return run(out_dir=args.out)
    if args.command == "stats":
        from m1vision.cohort import stats_folder
        from m1vision.errors import M1VisionError

        try:
            report = stats_folder(
                args.images, args.labels, args.out, match=args.match, progress=sys.stderr.isatty()
            )
        except M1VisionError as exc:
            print(f"m1vision stats: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        print(str(report))
        print(f"wrote {report.csv} ({len(report.table.rows)} rows)")
        return 1 if report.failed else 0
    if args.command == "reproduce":
        from m1vision.experiment import reproduce_cli

        return reproduce_cli(args.record)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects others


if __name__ == "__main__":
    sys.exit(main())
