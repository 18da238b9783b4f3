"""m1vision.doctor: real runs on this machine, each probe failing alone, and the doctor's
verdicts on recorded probes of other machines (native arm64, Rosetta, Intel Mac, Linux).

Recorded inputs: probe dicts as ``_platform.probe()`` returns them on each machine, the
header cuts of real macOS wheels in tests/fixtures/binaries (their architectures), and the
BLAS names recorded from those NumPy wheels' own build config (MANIFEST.json).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import io
import json
import os
import platform
import subprocess
import sys

import cv2
import numpy as np
import pytest
from repo_paths import FIXTURES
from repo_paths import REPO as ROOT

from m1vision import _platform, doctor
from m1vision.binarch import read_architectures, summarize
from m1vision.errors import InvalidParameterError

BINARIES = FIXTURES / "binaries"
MANIFEST = json.loads((BINARIES / "MANIFEST.json").read_text())["fixtures"]

PROBES = json.loads((FIXTURES / "probes.json").read_text())
NATIVE_ARM64 = PROBES["native_arm64"]
ROSETTA = PROBES["rosetta"]
INTEL_MAC = PROBES["intel_mac"]
LINUX = PROBES["linux_x86_64"]
LINUX_AARCH64 = {**LINUX, "machine": "aarch64"}
MACHINES = {
    "native-arm64": NATIVE_ARM64,
    "rosetta": ROSETTA,
    "intel-mac": INTEL_MAC,
    "linux": LINUX,
}


def statuses(checks):
    return {c["name"]: c["status"] for c in checks}


def by_name(checks):
    return {c["name"]: c for c in checks}


# ----------------------------------------------------------------- platform verdicts


@pytest.mark.parametrize(
    ("facts", "executable", "expected"),
    [
        (
            NATIVE_ARM64,
            ("arm64",),
            {"os": "ok", "apple_silicon": "ok", "python_architecture": "ok", "rosetta": "ok"},
        ),
        (
            ROSETTA,
            ("x86_64",),
            {"os": "ok", "apple_silicon": "ok", "python_architecture": "fail", "rosetta": "fail"},
        ),
        (
            INTEL_MAC,
            ("x86_64",),
            {"os": "ok", "apple_silicon": "fail", "python_architecture": "fail", "rosetta": "ok"},
        ),
        (
            LINUX,
            ("x86_64",),
            {"os": "ok", "apple_silicon": "warn", "python_architecture": "ok", "rosetta": "ok"},
        ),
        (
            LINUX_AARCH64,
            ("aarch64",),
            {"os": "ok", "apple_silicon": "warn", "python_architecture": "ok", "rosetta": "ok"},
        ),
    ],
    ids=["native-arm64", "rosetta", "intel-mac", "linux", "linux-aarch64"],
)
def test_platform_checks(facts, executable, expected):
    checks = doctor.platform_checks(facts, {"format": "x", "architectures": executable})
    got = statuses(checks)
    assert {k: got[k] for k in expected} == expected
    assert got["python_version"] == "ok"
    for c in checks:  # every failure says how to fix it
        assert c["fix"] if c["status"] == "fail" else True


def test_rosetta_fix_is_native_miniforge():
    checks = by_name(doctor.platform_checks(ROSETTA, {"architectures": ("x86_64",)}))
    assert checks["rosetta"]["fix"] == _platform.MINIFORGE_FIX
    assert "Rosetta" in checks["python_architecture"]["detail"]


def test_universal2_python_started_under_rosetta():
    checks = by_name(doctor.platform_checks(ROSETTA, {"architectures": ("x86_64", "arm64")}))
    assert checks["python_architecture"]["status"] == "fail"
    assert "arch -arm64" in checks["python_architecture"]["fix"]


def test_linux_says_not_apple_silicon():
    check = by_name(doctor.platform_checks(LINUX))["apple_silicon"]
    assert check["status"] == "warn"
    assert "not Apple Silicon" in check["detail"]


@pytest.mark.parametrize(("version", "status"), [("3.12.7", "ok"), ("3.10.14", "fail")])
def test_python_version_check(version, status):
    checks = by_name(doctor.platform_checks({**NATIVE_ARM64, "python_version": version}))
    assert checks["python_version"]["status"] == status


def test_old_macos_fails_on_apple_silicon():
    checks = by_name(doctor.platform_checks({**NATIVE_ARM64, "macos_version": "11.7.10"}))
    assert checks["os"]["status"] == "fail"


# ----------------------------------------------------------------- package verdicts


def fixture_summary(tmp_path, tag: str) -> dict:
    name = next(n for n in MANIFEST if MANIFEST[n]["platform_tag"] == tag)
    path = tmp_path / name.removesuffix(".gz")
    path.write_bytes(gzip.decompress((BINARIES / name).read_bytes()))
    return summarize([(MANIFEST[name]["member"], read_architectures(path))])


@pytest.mark.parametrize(
    ("machine", "tag", "status"),
    [
        ("native-arm64", "macosx_11_0_arm64", "ok"),
        ("native-arm64", "macosx_10_9_universal2", "ok"),
        ("native-arm64", "macosx_10_9_x86_64", "fail"),
        ("rosetta", "macosx_10_9_x86_64", "fail"),
        ("rosetta", "macosx_11_0_arm64", "ok"),
        ("intel-mac", "macosx_10_9_x86_64", "ok"),
        ("intel-mac", "macosx_11_0_arm64", "fail"),
        ("linux", "macosx_10_9_x86_64", "fail"),  # right CPU, wrong OS format
    ],
    ids=lambda v: str(v),
)
def test_architecture_check_on_real_wheel_headers(tmp_path, machine, tag, status):
    summary = fixture_summary(tmp_path, tag)
    got, detail, fix = doctor.architecture_check(
        "numpy", "numpy", "2.0.2", summary, MACHINES[machine]
    )
    assert got == status, detail
    if status == "fail":
        assert fix and "numpy" in detail


def test_x86_64_wheel_on_apple_silicon_names_the_fix(tmp_path):
    summary = fixture_summary(tmp_path, "macosx_10_9_x86_64")
    _, detail, fix = doctor.architecture_check("numpy", "numpy", "2.0.2", summary, NATIVE_ARM64)
    assert "x86_64" in detail and "_multiarray_umath" in detail
    assert "--force-reinstall" in fix and "numpy==2.0.2" in fix
    _, _, fix = doctor.architecture_check("numpy", "numpy", "2.0.2", summary, ROSETTA)
    assert fix == _platform.MINIFORGE_FIX


@pytest.mark.parametrize(
    ("version", "facts", "status", "phrase"),
    [
        ("2.18.1", NATIVE_ARM64, "ok", "2.18"),
        ("2.21.0", NATIVE_ARM64, "fail", "2.21"),
        ("2.19.0", NATIVE_ARM64, "fail", "wrong results"),
        ("2.21.0", LINUX, "warn", "2.18"),
    ],
    ids=["2.18.1-mac", "2.21-mac", "2.19-mac", "2.21-linux"],
)
def test_tensorflow_version_verdict(version, facts, status, phrase):
    got, detail, fix = doctor.version_check("tensorflow", "tensorflow", version, facts, {})
    assert got == status
    assert phrase in detail
    if status == "fail":
        assert "tensorflow==2.18.1" in fix and "tensorflow-metal==1.2.0" in fix


def recorded_numpy_config(tag: str) -> dict:
    entry = next(e for e in MANIFEST.values() if e["platform_tag"] == tag)
    return {"Build Dependencies": entry["numpy_build_dependencies"]}


@pytest.mark.parametrize(
    ("tag", "facts", "status", "kind"),
    [
        ("macosx_14_0_arm64", NATIVE_ARM64, "ok", "Accelerate"),
        ("macosx_11_0_arm64", NATIVE_ARM64, "warn", "OpenBLAS"),
        ("macosx_10_9_x86_64", INTEL_MAC, "warn", "OpenBLAS"),
    ],
    ids=["numpy-macos14-wheel", "numpy-macos11-wheel", "numpy-x86_64-wheel"],
)
def test_blas_check_on_recorded_numpy_configs(tag, facts, status, kind):
    check = doctor.blas_check(recorded_numpy_config(tag), facts)
    assert check["value"].startswith(kind)
    if facts is INTEL_MAC:
        status = "ok"  # OpenBLAS is what an Intel Mac gets; nothing to fix
    assert check["status"] == status
    if status == "warn":
        assert "libblas=*=*accelerate" in check["fix"]
        assert "macOS 14" in check["fix"]


def test_blas_check_on_this_numpy():
    check = doctor.blas_check(np.show_config(mode="dicts"), _platform.probe())
    assert check["status"] in ("ok", "warn")
    name = np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    assert name in check["detail"]


def test_gpu_check_verdicts():
    gpu = [{"name": "/physical_device:GPU:0", "details": {"device_name": "METAL"}}]
    assert doctor.gpu_check(NATIVE_ARM64, True, gpu)["status"] == "ok"
    no_plugin = doctor.gpu_check(NATIVE_ARM64, True, [])
    assert no_plugin["status"] == "fail" and "did not load" in no_plugin["detail"]
    assert doctor.gpu_check(NATIVE_ARM64, False, [])["status"] == "fail"
    assert doctor.gpu_check(LINUX, False, [])["status"] == "ok"


# ----------------------------------------------------------------- OpenCV build


def test_parse_opencv_build_of_this_cv2():
    build = doctor.parse_opencv_build(cv2.getBuildInformation())
    assert build["version"] == cv2.__version__
    if platform.machine() == "x86_64":
        assert "SSE2" in build["baseline"]  # part of the x86-64 ISA, always the baseline
    elif platform.machine() in ("arm64", "aarch64"):
        assert "NEON" in build["baseline"]
    assert build["parallel_framework"]


def test_opencv_single_thread_warns():
    build = doctor.parse_opencv_build(cv2.getBuildInformation())
    facts = _platform.probe()
    assert doctor.opencv_build_check(build, 1, facts)["status"] == (
        "warn" if (os.cpu_count() or 1) > 1 else "ok"
    )
    assert doctor.opencv_build_check({**build, "baseline": []}, 4, NATIVE_ARM64)["status"] == (
        "warn"
    )


# ----------------------------------------------------------------- lock drift


def test_lock_drift_of_this_environment():
    drift = doctor.installed_versus_lock()
    facts = _platform.probe()
    name = _platform.LOCKS.get((facts["system"], facts["machine"]))
    assert drift["lock"] == f"{name}.txt"
    assert drift["locked"] > 100
    for m in drift["mismatched"]:  # every reported mismatch is real
        assert importlib.metadata.version(m["name"]) == m["installed"] != m["locked"]
    for m in drift["missing"]:
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.distribution(m["name"])
    assert drift["status"] == ("warn" if drift["mismatched"] or drift["missing"] else "ok")


def test_lock_drift_reports_mismatch_and_missing(tmp_path):
    lock = tmp_path / "edited.txt"
    lock.write_text(
        "# edited copy\n"
        "numpy==1.26.4\n    # via m1vision\n"
        "Not_A.Real-Package-m1v==1.0\n"
        f"pyelftools=={importlib.metadata.version('pyelftools')}\n"
    )
    drift = doctor.installed_versus_lock(lock=lock)
    assert drift["status"] == "warn"
    assert drift["locked"] == 3
    assert drift["mismatched"] == [
        {"name": "numpy", "locked": "1.26.4", "installed": np.__version__}
    ]
    assert drift["missing"] == [{"name": "not-a-real-package-m1v", "locked": "1.0"}]
    assert "numpy" not in drift["extra"] and "pyelftools" not in drift["extra"]


def test_lock_drift_unknown_without_a_lock(monkeypatch):
    windows = {**LINUX, "system": "Windows", "machine": "AMD64"}
    monkeypatch.setattr(_platform, "probe", lambda: windows)
    drift = doctor.installed_versus_lock()
    assert drift["status"] == "unknown"
    assert "Windows" in drift["detail"]


# ----------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def info():
    return doctor.get_env_info(tensorflow=False)


def test_get_env_info_structure(info):
    names = [c["name"] for c in info["checks"]]
    assert len(names) == len(set(names))
    for expected in (
        "os",
        "apple_silicon",
        "python_architecture",
        "rosetta",
        "python_version",
        "numpy",
        "opencv",
        "tensorflow",
        "tensorflow_metal",
        "keras",
        "numpy_blas",
        "opencv_build",
        "lock_drift",
    ):
        assert expected in names
    assert "tensorflow_selftest" not in names  # not asked for
    for c in info["checks"]:
        assert set(c) == {"name", "status", "value", "detail", "fix"}
        assert c["status"] in doctor.STATUSES
    assert info["summary"] == {
        s: sum(c["status"] == s for c in info["checks"]) for s in doctor.STATUSES
    }
    json.dumps(info)  # JSON-ready without help


def test_get_env_info_facts_of_this_machine(info):
    checks = by_name(info["checks"])
    assert info["platform"]["facts"]["machine"] == platform.machine()
    assert info["packages"]["numpy"]["version"] == np.__version__
    assert info["packages"]["opencv"]["version"].startswith(cv2.__version__)
    assert info["packages"]["numpy"]["binaries"]["files"] > 0
    if sys.platform == "linux":
        assert checks["apple_silicon"]["status"] == "warn"
        assert "not Apple Silicon" in checks["apple_silicon"]["detail"]
        assert checks["numpy"]["status"] == "ok"  # ELF files for this machine
        assert checks["tensorflow_metal"]["status"] == "ok"  # not needed on Linux


def test_no_tensorflow_does_not_import_it():
    code = (
        "import sys, m1vision.doctor as d; d.get_env_info(tensorflow=False); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "[]"


def run_cli_subprocess(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "m1vision", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
        env=env,
    )


def test_cli_json(tmp_path):
    out = tmp_path / "report.json"
    proc = run_cli_subprocess("--json", "--no-tensorflow", "--out", str(out))
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == report
    failed = any(c["status"] == "fail" for c in report["checks"])
    assert proc.returncode == (1 if failed else 0)
    if sys.platform == "linux":
        check = by_name(report["checks"])["apple_silicon"]
        assert check["status"] == "warn" and "not Apple Silicon" in check["detail"]
    # an existing report is not replaced
    before = out.read_bytes()
    again = run_cli_subprocess("--json", "--no-tensorflow", "--out", str(out))
    assert again.returncode == 2
    assert "exists already" in again.stderr and "Traceback" not in again.stderr
    assert out.read_bytes() == before


def test_cli_text():
    proc = run_cli_subprocess("--no-tensorflow")
    assert "Traceback" not in proc.stderr
    assert "summary:" in proc.stdout
    if sys.platform == "linux":
        assert "This is not Apple Silicon" in proc.stdout


def test_run_cli_exit_code_on_a_failing_machine(monkeypatch, capsys):
    # a recorded Rosetta probe: the platform verdict fails, so the exit code is 1
    monkeypatch.setattr(_platform, "probe", lambda: dict(ROSETTA))
    code = doctor.run_cli(as_json=True, tensorflow=False, out=None)
    report = json.loads(capsys.readouterr().out)
    assert by_name(report["checks"])["rosetta"]["status"] == "fail"
    assert code == 1


def test_run_cli_exit_code_here(capsys):
    code = doctor.run_cli(as_json=True, tensorflow=False, out=None)
    report = json.loads(capsys.readouterr().out)
    assert code == int(any(c["status"] == "fail" for c in report["checks"]))


def test_print_env_info(info):
    buf = io.StringIO()
    doctor.print_env_info(info, file=buf)
    text = buf.getvalue()
    for c in info["checks"]:
        assert c["name"] in text
    assert f"{info['summary']['ok']} ok" in text


# ----------------------------------------------------------------- probes fail alone


def assert_only_unknown(report, name):
    got = statuses(report["checks"])
    assert got[name] == "unknown"
    others = {k: v for k, v in got.items() if k != name}
    assert "unknown" not in others.values(), others
    assert "lock_drift" in got and "opencv_build" in got


def test_broken_binary_in_a_package(tmp_path, monkeypatch):
    # a shadowing numpy installation whose RECORD lists an extension that is a text file
    dist_info = tmp_path / "numpy-2.0.2.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 2.0.2\n")
    bad = "numpy/_core/_broken.cpython-311-x86_64-linux-gnu.so"
    (dist_info / "RECORD").write_text(f"{bad},,\nnumpy-2.0.2.dist-info/METADATA,,\n")
    (tmp_path / bad).parent.mkdir(parents=True)
    (tmp_path / bad).write_text("not a binary\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    report = doctor.get_env_info(tensorflow=False)
    assert_only_unknown(report, "numpy")
    numpy_check = by_name(report["checks"])["numpy"]
    assert "BinaryFormatError" in numpy_check["detail"] and "_broken" in numpy_check["detail"]
    assert "error" in report["packages"]["numpy"]


def test_opencv_build_probe_fails_alone(monkeypatch):
    def broken():
        raise cv2.error("getBuildInformation failed")

    monkeypatch.setattr(cv2, "getBuildInformation", broken)
    report = doctor.get_env_info(tensorflow=False)
    assert_only_unknown(report, "opencv_build")
    assert "getBuildInformation failed" in report["opencv_build"]["error"]


def test_numpy_config_probe_fails_alone(monkeypatch):
    def broken(mode="stdout"):
        raise RuntimeError("no build config")

    monkeypatch.setattr(np, "show_config", broken)
    report = doctor.get_env_info(tensorflow=False)
    assert_only_unknown(report, "numpy_blas")


def test_platform_probe_fails_alone(monkeypatch):
    def broken():
        raise OSError("sysctl is gone")

    monkeypatch.setattr(_platform, "probe", broken)
    report = doctor.get_env_info(tensorflow=False)
    got = statuses(report["checks"])
    assert got["platform"] == "unknown" and "sysctl is gone" in report["platform"]["error"]
    # the package checks go on with facts from the platform module
    assert got["numpy"] != "unknown"


# ----------------------------------------------------------------- home masking


def test_mask_home_whole_components():
    masked = doctor.mask_home(
        {"a": "/home/al/x", "b": ["/home/alice/y", "see /home/al."], "/home/al": 1},
        home="/home/al",
    )
    assert masked == {"a": "~/x", "b": ["/home/alice/y", "see /home/al."], "~": 1}


def test_home_is_masked_in_the_report(monkeypatch):
    home = str(ROOT.parent)  # the venv and the repo live under it
    monkeypatch.setenv("HOME", home)
    text = json.dumps(doctor.get_env_info(tensorflow=False))
    assert home + "/" not in text
    assert '"~/' in text


def test_home_is_masked_in_the_cli():
    env = {**os.environ, "HOME": str(ROOT.parent)}
    proc = run_cli_subprocess("--json", "--no-tensorflow", env=env)
    assert str(ROOT.parent) + "/" not in proc.stdout
    assert json.loads(proc.stdout)["python"]["executable"].startswith("~/")


# ----------------------------------------------------------------- TensorFlow


@pytest.mark.slow
def test_tensorflow_selftest_cpu():
    # the self-test itself is m1vision.numerics' (tests/test_numerics.py); this is its entry
    result = doctor.tensorflow_selftest("/CPU:0")
    assert {"ok", "max_abs_diff", "relative_error", "tolerance", "detail"} <= set(result)
    assert result["tolerance"] == doctor.SELFTEST_TOLERANCE == 1e-4
    assert result["ok"] is True
    assert 0 <= result["relative_error"] < result["tolerance"]
    assert "NumPy float64" in result["detail"]


@pytest.mark.slow
def test_tensorflow_selftest_unknown_device():
    import tensorflow as tf

    missing = f"/GPU:{len(tf.config.list_logical_devices('GPU')) + 3}"
    with pytest.raises(InvalidParameterError, match="no such TensorFlow device"):
        doctor.tensorflow_selftest(missing)


@pytest.mark.slow
def test_get_env_info_with_tensorflow():
    report = doctor.get_env_info(tensorflow=True)
    got = statuses(report["checks"])
    assert got["tensorflow_import"] == "ok"
    assert got["tensorflow_selftest"] == "ok"
    assert "/CPU:0" in report["tensorflow"]["selftest"]
    if sys.platform == "linux":
        assert got["tensorflow_gpu"] == "ok"  # no Metal expected here


# ----------------------------------------------------------------- the server's front ends


def test_jupyter_front_ends_of_this_environment(info):
    """The real server environment: both front ends found where JupyterLab finds them."""
    import ipyevents
    import ipywidgets
    from jupyter_core.paths import jupyter_path
    from jupyterlab_server.config import get_federated_extensions

    checks = by_name(info["checks"])
    assert checks["jupyter_widgets"]["status"] == "ok", checks["jupyter_widgets"]
    assert checks["jupyter_ipyevents"]["status"] == "ok", checks["jupyter_ipyevents"]
    # JupyterLab's own reading of the same folders (what `jupyter labextension list` shows)
    lab = get_federated_extensions(jupyter_path("labextensions"))
    raw = info["jupyter_front_ends"]
    for name in ("@jupyter-widgets/jupyterlab-manager", "ipyevents"):
        assert raw["front_ends"][name]["version"] == lab[name]["version"]
    assert checks["jupyter_ipyevents"]["value"] == ipyevents.__version__
    assert raw["kernel"]["ipywidgets"]["version"] == ipywidgets.__version__
    assert raw["kernel"]["ipywidgets"]["base_protocol"] == (
        ipywidgets.Widget()._model_module_version  # what the kernel really asks for
    )


def _extension(root, name: str, version: str) -> None:
    folder = root.joinpath("labextensions", *name.split("/"))
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": version}))


@pytest.mark.parametrize(
    ("name", "version", "check", "phrase", "package"),
    [
        ("@jupyter-widgets/jupyterlab-manager", "3.1.1", "jupyter_widgets", "model not found",
         "jupyterlab_widgets~=3.0."),
        ("ipyevents", "1.9.0", "jupyter_ipyevents", "do nothing", "ipyevents=="),
    ],
    ids=["widget-manager", "ipyevents"],
)  # fmt: skip
def test_mismatched_front_end_on_the_jupyter_path(tmp_path, name, version, check, phrase,
                                                  package):  # fmt: skip
    """A temporary JUPYTER_PATH holding an old front end, which shadows the real one."""
    from jupyterlab_server.config import get_federated_extensions

    _extension(tmp_path / "data", name, version)
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path / "data"),
           "JUPYTER_DATA_DIR": str(tmp_path / "user")}  # fmt: skip
    # the server would load the old one too: JupyterLab's own reading, in that environment
    probe = subprocess.run(
        [sys.executable, "-c", ("import json; from jupyter_core.paths import jupyter_path; "
                                "print(json.dumps(jupyter_path('labextensions')))")],
        capture_output=True, text=True, env=env, check=True, timeout=60,
    )  # fmt: skip
    assert get_federated_extensions(json.loads(probe.stdout))[name]["version"] == version
    proc = run_cli_subprocess("--json", "--no-tensorflow", env=env)
    report = json.loads(proc.stdout)
    got = by_name(report["checks"])[check]
    assert got["status"] == "fail", got
    assert got["value"] == version
    assert phrase in got["detail"] and str(tmp_path / "data") in got["detail"]
    assert f'pip install "{package}' in got["fix"] and "restart the server" in got["fix"]
    assert proc.returncode == 1
    others = {"jupyter_widgets", "jupyter_ipyevents"} - {check}
    assert by_name(report["checks"])[others.pop()]["status"] == "ok"


def test_a_server_in_another_environment_is_read_there(tmp_path):
    """JupyterLab in another environment (conda's base, say), found as `jupyter-lab` on PATH."""
    server = tmp_path / "server-env"
    (server / "bin").mkdir(parents=True)
    launcher = server / "bin" / "jupyter-lab"
    launcher.write_text("#!/bin/sh\n")
    launcher.chmod(0o755)
    _extension(server / "share" / "jupyter", "@jupyter-widgets/jupyterlab-manager", "3.6.1")
    env = {**os.environ, "PATH": f"{server / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_DATA_DIR": str(tmp_path / "user")}  # fmt: skip
    env.pop("JUPYTER_PATH", None)
    report = json.loads(run_cli_subprocess("--json", "--no-tensorflow", env=env).stdout)
    raw = report["jupyter_front_ends"]
    assert raw["server_prefix"] == str(server)
    assert str(server / "share" / "jupyter" / "labextensions") in raw["labextension_dirs"]
    kernel_dir = os.path.join(sys.prefix, "share", "jupyter", "labextensions")
    assert kernel_dir not in raw["labextension_dirs"]  # the server never looks there
    checks = by_name(report["checks"])
    assert checks["jupyter_widgets"]["status"] == "fail"  # ipywidgets 8 with an ipywidgets 7 lab
    assert str(server) in checks["jupyter_widgets"]["fix"]
    assert checks["jupyter_ipyevents"]["status"] == "warn"  # not in the server's environment
    assert "ipyevents==" in checks["jupyter_ipyevents"]["fix"]


@pytest.mark.parametrize(
    ("front_ends", "expected"),
    [
        ({}, {"jupyter_widgets": "warn", "jupyter_ipyevents": "warn"}),
        ({"@jupyter-widgets/jupyterlab-manager": {"version": "5.0.0", "path": "p"},
          "ipyevents": {"version": "2.0.4", "path": "p"}},
         {"jupyter_widgets": "ok", "jupyter_ipyevents": "ok"}),
        ({"@jupyter-widgets/jupyterlab-manager": {"version": "6.0.0", "path": "p"},
          "ipyevents": {"version": "2.0.5", "path": "p"}},
         {"jupyter_widgets": "fail", "jupyter_ipyevents": "fail"}),
    ],
    ids=["missing", "matching", "mismatched"],
)  # fmt: skip
def test_front_end_rule(front_ends, expected):
    from m1vision.doctor._jupyter import front_end_checks

    kernel = {"ipywidgets": {"version": "8.1.9", "base_protocol": "2.0.0"},
              "ipyevents": {"version": "2.0.4", "module_version": "2.0.4"}}  # fmt: skip
    checks = front_end_checks(kernel, front_ends, where="/opt/server-env")
    assert statuses(checks) == expected
    for c in checks:
        assert (c["fix"] is None) == (c["status"] == "ok")
        if c["fix"]:
            assert "/opt/server-env" in c["fix"]


@pytest.mark.parametrize(
    ("version", "spec", "ok"),
    [("2.0.4", "2.0.4", True), ("2.0.3", "2.0.4", False), ("2.1.0", "^2.0.4", True),
     ("3.0.0", "^2.0.4", False), ("0.3.9", "^0.3.1", True), ("0.4.0", "^0.3.1", False),
     ("1.2.9", "~1.2.0", True), ("1.3.0", "~1.2.0", False), ("9.9.9", "*", True)],
    ids=lambda v: str(v),
)  # fmt: skip
def test_semver_satisfies_as_npm(version, spec, ok):
    from m1vision.doctor._jupyter import satisfies

    assert satisfies(version, spec) is ok
