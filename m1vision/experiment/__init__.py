"""Reproducible experiments: record a run, replay it anywhere, explain every difference.

A *record* is a versioned JSON file that holds what is needed to run the work again and to
tell whether it still comes out the same: the pipeline, each input with its SHA-256, the model
file's SHA-256, the seed, the environment (from the doctor), the project's git commit, a hash
and a summary of every output, the predictions with the tolerance they must meet, and timings.

* :func:`record` runs the work and writes ``<out_dir>/<name>-<UTC time>/record.json`` with the
  outputs beside it. Records are never overwritten.
* :func:`reproduce` (``python -m m1vision reproduce RECORD``) runs it again and compares.
  OpenCV outputs must match exactly (the hash of the output array: shape, dtype and bytes);
  TensorFlow outputs within the record's tolerance. Every difference is explained: a changed
  or missing input (by hash), each output that differs and by how much, and the environment
  side by side (what drifted), so a mismatch comes with its likely cause.

Paths in a record are stored relative to the record's folder where possible, so a project
folder can be moved or cloned elsewhere and its records still replay.

Where things are (private parts):

================  ============================================================================
``_conditions``   :func:`set_seed`, the environment and the git commit a record keeps
``_work``         the work itself: the pipeline over the inputs, the predictor as data and back
``_recording``    :func:`record`: the record folder, its ``record.json``, the kept views
``_replay``       :func:`reproduce`, :class:`Reproduction`, :class:`Difference`, the command
================  ============================================================================

The record's format (schema, portable paths, hashes of arrays, kept views) is
:mod:`m1vision._record`'s; :mod:`m1vision.widgets` reads it too.
"""

from __future__ import annotations

from m1vision._hashing import file_sha256
from m1vision._record import SCHEMA, SCHEMA_VERSION, array_sha256, load_record
from m1vision.experiment._conditions import environment as environment
from m1vision.experiment._conditions import set_seed
from m1vision.experiment._recording import DEFAULT_TOLERANCE as DEFAULT_TOLERANCE
from m1vision.experiment._recording import record
from m1vision.experiment._replay import Difference, Reproduction, reproduce, reproduce_cli

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "Difference",
    "Reproduction",
    "array_sha256",
    "file_sha256",
    "load_record",
    "record",
    "reproduce",
    "reproduce_cli",
    "set_seed",
]
