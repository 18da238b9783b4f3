"""The numerics self-test: reduced precision passes, wrong results fail (m1vision.numerics).

The judging is checked on results made in NumPy with the precision of each case (TF32 and
bfloat16 operands emulated by rounding float32 mantissas) and with the errors the
tensorflow-metal bugs show; the self-test itself runs on this process's Keras backend (the
CPU here; `make test` runs this file under TensorFlow and again under JAX).
"""

from __future__ import annotations

import numpy as np
import pytest

from m1vision.errors import InvalidParameterError
from m1vision.numerics import TOLERANCES, judge, reference_logits, selftest, selftest_inputs


def _round_mantissa(a: np.ndarray, bits: int) -> np.ndarray:
    """float32 values rounded to ``bits`` explicit mantissa bits (TF32: 10, bfloat16: 7)."""
    if bits >= 23:
        return np.asarray(a, np.float32)
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    drop = 23 - bits
    u = ((u + (1 << (drop - 1))) >> drop) << drop
    return u.astype(np.uint32).view(np.float32)


def _reduced_precision_logits(bits: int) -> np.ndarray:
    """The self-test model with every operand of the conv and the dense rounded to ``bits``
    (what tensor cores do in TF32), accumulated in float64."""
    x, kernel, bias1, dense, bias2 = selftest_inputs()
    rounded = [_round_mantissa(a, bits) for a in (x, kernel)]
    conv_in = np.pad(rounded[0].astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(conv_in, (3, 3), axis=(1, 2))
    conv = np.einsum("nhwcij,ijcf->nhwf", windows, rounded[1].astype(np.float64)) + bias1
    h = _round_mantissa(np.maximum(conv, 0.0).reshape(len(x), -1), bits).astype(np.float64)
    return h @ _round_mantissa(dense, bits).astype(np.float64) + bias2


def test_reference_is_the_model_computed_another_way():
    # an independent check of the float64 reference: a direct loop over output pixels
    x, kernel, bias1, dense, bias2 = selftest_inputs()
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = np.zeros((*x.shape[:3], kernel.shape[-1]))
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            patch = xp[:, i : i + 3, j : j + 3, :]
            conv[:, i, j, :] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2]))
    h = np.maximum(conv + bias1, 0.0).reshape(len(x), -1)
    np.testing.assert_allclose(reference_logits(), h @ dense + bias2, rtol=1e-12, atol=1e-12)


def test_tolerances_are_documented_figures():
    assert TOLERANCES == {"cpu": 1e-4, "gpu": 1e-2}


@pytest.mark.parametrize(
    ("bits", "kind", "ok"),
    [(23, "cpu", True), (10, "gpu", True), (7, "gpu", True), (10, "cpu", False)],
    ids=["float32-on-cpu", "tf32-on-gpu", "bfloat16-on-gpu", "tf32-is-not-cpu-precision"],
)
def test_reduced_precision_is_told_from_error(bits, kind, ok):
    result = _reduced_precision_logits(bits)
    judged = judge(result, reference_logits(), kind=kind)
    assert judged["ok"] is ok, judged["detail"]
    assert judged["classes_agree"]


def test_tf32_error_is_well_inside_the_gpu_tolerance():
    judged = judge(_reduced_precision_logits(10), reference_logits(), kind="gpu")
    assert 1e-4 < judged["relative_error"] < TOLERANCES["gpu"] / 10


def _order_one_error(ref):
    return ref + np.random.default_rng(1).normal(0, 1, ref.shape)


def _classes_swapped(ref):
    return ref[:, ::-1]


def _non_finite(ref):
    out = ref.copy()
    out[0, 0] = np.nan
    return out


def _half_the_batch_zero(ref):
    out = ref.copy()
    out[4:] = 0.0
    return out


@pytest.mark.parametrize(
    "wrong",
    [_order_one_error, _classes_swapped, _non_finite, _half_the_batch_zero],
    ids=["order-one-error", "classes-swapped", "nan", "half-the-batch-zero"],
)
@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_wrong_results_fail_on_every_device_kind(wrong, kind):
    judged = judge(wrong(reference_logits()), reference_logits(), kind=kind)
    assert not judged["ok"]


def test_judge_names_a_class_disagreement():
    ref = reference_logits()
    judged = judge(_classes_swapped(ref), ref, kind="gpu")
    assert not judged["classes_agree"]
    assert "DIFFER" in judged["detail"]


def test_judge_refuses_an_unknown_kind():
    with pytest.raises(InvalidParameterError, match="kind must be one of"):
        judge(reference_logits(), reference_logits(), kind="tpu")


@pytest.mark.slow
def test_selftest_passes_on_this_backends_cpu():
    result = selftest()
    assert result["ok"], result["detail"]
    assert result["kind"] == "cpu"
    assert result["relative_error"] < 1e-5  # float32 on a CPU: ~1e-7 measured
    assert result["backend"] in result["detail"]


def test_reference_against_scipy():
    # the float64 reference against SciPy's correlate
    from scipy import ndimage

    x, kernel, bias1, dense, bias2 = selftest_inputs()
    conv = np.zeros((*x.shape[:3], kernel.shape[3]))
    for n in range(x.shape[0]):
        for f in range(kernel.shape[3]):
            conv[n, :, :, f] = ndimage.correlate(
                x[n].astype(np.float64), kernel[:, :, :, f].astype(np.float64), mode="constant"
            )[:, :, 1]  # the centre channel offset is the full-depth sum
    h = np.maximum(conv + bias1, 0).reshape(len(x), -1)
    got = reference_logits()
    np.testing.assert_allclose(got, h @ dense.astype(np.float64) + bias2, atol=1e-10)
    assert 0.5 < np.abs(got).max() < 10  # logits of magnitude ~1, as the tolerances assume


@pytest.mark.parametrize(
    ("recorded", "devices", "expected", "words"),
    [
        (1e-4, ("/CPU:0", "cpu"), 1e-4, "both CPUs"),
        (1e-4, ("/CPU:0", "cuda:0"), 5e-3, "reduced precision"),
        (1e-4, ("/GPU:0", "/CPU:0"), 5e-3, "recorded on /GPU:0"),
        (1e-4, ("mps", "mps"), 5e-3, "TF32, MPS"),
        (1e-4, (None, "cpu"), 5e-3, "an unrecorded device"),
        (0.05, ("cpu", "cpu"), 0.05, "the record asks for 0.05"),
    ],
    ids=["cpu-cpu", "cpu-cuda", "metal-cpu", "mps-mps", "old-record", "record-looser"],
)
def test_prediction_tolerance_follows_the_devices(recorded, devices, expected, words):
    from m1vision.numerics import prediction_tolerance

    tolerance, why = prediction_tolerance(recorded, *devices)
    assert tolerance == expected
    assert words in why
