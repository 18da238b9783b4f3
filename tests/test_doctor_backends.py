"""The doctor's Keras backend listing and GPU recommendation (m1vision/doctor/_backends.py).

The rules are pure and tested on the facts of each platform; the probe runs for real on
this machine (the CPU of every installed backend).
"""

from __future__ import annotations

import importlib.metadata
import os
import sys

import pytest

from m1vision.doctor import _backends

MAC = {"system": "Darwin", "apple_silicon": True, "python_version": "3.12.8"}
MAC_313 = {**MAC, "python_version": "3.13.1"}
LINUX = {"system": "Linux", "apple_silicon": None, "python_version": "3.11.7"}
GOOD_TF = {"tensorflow": "2.18.1", "tensorflow-metal": "1.2.0", "torch": None, "jax": None}
TF_221 = {"tensorflow": "2.21.0", "tensorflow-metal": "1.2.0", "torch": "2.9.0", "jax": None}


@pytest.mark.parametrize(
    ("facts", "versions", "gpus", "status", "value", "words"),
    [
        (MAC, GOOD_TF, {"tensorflow": ["/GPU:0"]}, "ok", "tensorflow+metal", "tensorflow-metal"),
        (MAC, TF_221, {"tensorflow": [], "torch": ["mps"]}, "ok", "torch+mps", "KERAS_BACKEND"),
        # the plugin lists a GPU on TF 2.19/2.21 but it is not the known-good stack
        (MAC, {**TF_221, "torch": None}, {"tensorflow": ["/GPU:0"]}, "warn", None, "known-good"),
        (MAC_313, {"torch": None}, {}, "warn", None, "no build for Python 3.13.1"),
        (LINUX, {}, {"torch": ["cuda:0"]}, "ok", "torch:cuda:0", "cuda:0"),
        (LINUX, {}, {}, "ok", None, "No GPU here"),
    ],
    ids=[
        "mac-known-good-tf",
        "mac-new-tf-torch-mps",
        "mac-new-tf-only",
        "mac-py313-nothing",
        "linux-cuda",
        "linux-cpu",
    ],
)
def test_recommendation(facts, versions, gpus, status, value, words):
    check = _backends.recommend(facts, versions, gpus)
    assert check["name"] == "gpu_path"
    assert (check["status"], check["value"]) == (status, value)
    assert words in check["detail"]
    if status == "warn":
        assert "m1vision[torch]" in check["fix"]


def test_tf_metal_known_good_needs_all_three():
    assert _backends.tf_metal_ok(MAC, GOOD_TF)
    assert not _backends.tf_metal_ok(MAC_313, GOOD_TF)
    assert not _backends.tf_metal_ok(MAC, {**GOOD_TF, "tensorflow": "2.19.0"})
    assert not _backends.tf_metal_ok(MAC, {**GOOD_TF, "tensorflow-metal": None})


def test_versions_only_without_devices():
    checks, raw = _backends._backends_probe(LINUX, devices=False)
    assert [c["name"] for c in checks] == ["keras_backends"]
    assert raw["devices"] == {}
    # the default install has TensorFlow: the version of the distribution that provides the
    # `tensorflow` package (tensorflow-cpu on Linux x86_64, tensorflow elsewhere)
    (dist,) = set(importlib.metadata.packages_distributions()["tensorflow"])
    assert raw["installed"]["tensorflow"] == importlib.metadata.version(dist)


def test_a_backend_failing_to_import_is_reported_alone(monkeypatch, tmp_path):
    # a torch that cannot be imported, for real, in the child process that probes it
    (tmp_path / "torch.py").write_text(
        "raise ImportError('libtorch_cpu.so: cannot open shared object file')\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    monkeypatch.setattr(
        _backends, "installed_backends", lambda: {"tensorflow": None, "torch": "2.9", "jax": None}
    )
    checks, raw = _backends._backends_probe(LINUX)
    assert "import failed" in checks[0]["detail"] and "libtorch_cpu" in checks[0]["detail"]
    assert "error" in raw["devices"]["torch"]
    assert checks[1]["name"] == "gpu_path"  # the recommendation still comes


@pytest.mark.slow
def test_probe_self_tests_every_installed_backends_cpu():
    checks, raw = _backends._backends_probe(LINUX)
    assert checks[0]["status"] == "ok", checks[0]["detail"]
    for name, version in raw["installed"].items():
        if name in _backends.BACKENDS and version is not None:
            cpu = {"tensorflow": "/CPU:0", "torch": "cpu", "jax": "cpu:0"}[name]
            assert raw["devices"][name][cpu]["ok"], raw["devices"][name]
