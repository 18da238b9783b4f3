"""The package as a whole: a light import, runnable docstring examples, the CLI entry point."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys

import pytest

import m1vision

HEAVY = ("tensorflow", "ipywidgets", "matplotlib.pyplot", "matplotlib", "keras")


def test_import_is_light():
    code = f"import sys, m1vision; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "", f"import m1vision loaded: {out.stdout.strip()}"


def test_submodules_load_on_attribute_access():
    assert m1vision.preprocess.canny.__module__ == "m1vision.preprocess"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = m1vision.nope


# Every module, the private parts of packages included (a package's __init__ re-exports
# functions whose examples live in its private modules).
MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(m1vision.__path__, "m1vision.")
    if not name.endswith("__main__")
)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"


def test_cli_help_answers():
    out = subprocess.run(
        [sys.executable, "-m", "m1vision", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for command in ("doctor", "demo", "reproduce"):
        assert command in out.stdout


def test_cli_unknown_command_is_a_usage_error():
    out = subprocess.run(
        [sys.executable, "-m", "m1vision", "frobnicate"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
