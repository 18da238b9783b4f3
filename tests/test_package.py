"""The package as a whole: a light import, runnable docstring examples, the CLI entry point."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from repo_paths import REPO

import m1vision

HEAVY = ("tensorflow", "ipywidgets", "matplotlib.pyplot", "matplotlib", "keras")


def test_import_is_light():
    code = f"import sys, m1vision; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "", f"import m1vision loaded: {out.stdout.strip()}"


def test_import_loads_neither_numpy_nor_opencv():
    code = "import sys, m1vision; print(sorted(m for m in ('numpy', 'cv2') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# Every public module and package of m1vision (top level, names not starting with "_"),
# found on disk, not from m1vision's own list.
PUBLIC = sorted(
    p.stem if p.suffix == ".py" else p.name
    for p in Path(m1vision.__file__).parent.iterdir()
    if not p.name.startswith(("_", "."))
    and (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file()))
)


@pytest.fixture(scope="module")
def reached() -> dict:
    """``{name: what m1vision.<name> gives after a bare import}``, in one fresh process."""
    code = (
        "import json, m1vision\n"
        "out = {}\n"
        f"for name in {PUBLIC!r}:\n"
        "    try:\n"
        "        out[name] = getattr(m1vision, name).__name__\n"
        "    except AttributeError as exc:\n"
        "        out[name] = f'AttributeError: {exc}'\n"
        "print(json.dumps(out))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", PUBLIC, ids=PUBLIC)
def test_every_public_submodule_is_reachable_after_a_bare_import(reached, name):
    assert reached[name] == f"m1vision.{name}"
    assert name in m1vision.__all__ and name in dir(m1vision)


def test_the_top_level_exports_every_error_class():
    from m1vision import errors

    classes = sorted(
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type)
        and issubclass(obj, Exception)
        and obj.__module__ == errors.__name__
    )
    assert set(classes) <= set(errors.__all__)
    assert set(classes) <= set(m1vision.__all__)
    assert all(getattr(m1vision, name) is getattr(errors, name) for name in classes)


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


# ----------------------------------------------------------------- a non-editable install


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """m1vision installed from a copy of the source (not editable) into a fresh venv.

    The venv reuses this environment's packages through a .pth line (a plain path: this
    environment's editable m1vision is not activated there), so nothing is downloaded.
    """
    import shutil
    import sysconfig

    root = REPO
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    # symlinks=False: the data behind m1vision/_bundled (data/ in the checkout) is copied
    shutil.copytree(
        root / "m1vision", src / "m1vision", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "_m1vision_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "uv", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--python", str(python), str(src)],
        check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    return python, tmp


def _run_installed(python, cwd, *args, timeout=600):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "M1VISION_"))}
    return subprocess.run(
        [str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_a_wheel_install_carries_the_data_and_finds_no_checkout(installed):
    python, tmp = installed
    code = (
        "import json, m1vision, m1vision.data as d, m1vision._resources as r; "
        "print(json.dumps([m1vision.__file__, str(d.model_path()), str(d.batch_dir()), "
        "str(r.source_root()), str(r.locks_dir())]))"
    )
    out = _run_installed(python, tmp, "-c", code)
    assert out.returncode == 0, out.stderr
    module, model, batch, source, locks = json.loads(out.stdout)
    site = str(tmp / "venv")
    assert module.startswith(site) and model.startswith(site) and batch.startswith(site)
    assert Path(model).stat().st_size > 10_000
    assert len(list(Path(batch).glob("*.png"))) == 8
    assert source == locks == "None"


@pytest.mark.slow
def test_a_wheel_install_runs_the_demo_and_the_doctor(installed):
    python, tmp = installed
    doctor = _run_installed(python, tmp, "-m", "m1vision", "doctor", "--no-tensorflow", "--json")
    assert doctor.returncode in (0, 1), doctor.stderr  # 1: a check failed, not a crash
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["lock_drift"]["status"] == "unknown"
    assert "the lock is not available" in checks["lock_drift"]["detail"]

    demo = _run_installed(python, tmp, "-m", "m1vision", "demo", "--out", str(tmp / "outputs"))
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert len(list((tmp / "outputs" / "batch").glob("*.png"))) == 8
    assert len(list((tmp / "outputs" / "inference").glob("*_gradcam.png"))) == 6
