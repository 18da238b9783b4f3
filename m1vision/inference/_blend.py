"""Running the model over the windows and blending them (internal): in NumPy on the host,
or, on torch with a GPU (CUDA, MPS), in torch tensors on the device, so that windows are cut,
weighted and summed where the model's output already is and only the label map (or the
probabilities) comes back. Both follow the same steps:

    for each batch of windows (lazily): cut (zeros outside the volume) -> prepare -> model
    (mean over mirrorings with TTA) -> acc[:, where] += output * weight, wsum[where] += weight
    acc /= wsum -> softmax (logits) -> argmax, or the probabilities
"""

from __future__ import annotations

import itertools

import numpy as np

from m1vision.errors import SegmentationModelError
from m1vision.inference import _segcard, _windows
from m1vision.inference._clock import NO_CLOCK, clock_of


def _regions(win, pads, shape):
    """Where a window (in padded coordinates) lies in the volume, and which part of the
    window that is."""
    src, dst = [], []
    for s, (before, _), n in zip(win, pads, shape, strict=True):
        a, b = s.start - before, s.stop - before
        lo, hi = max(a, 0), min(b, n)
        src.append(slice(lo, hi))
        dst.append(slice(lo - a, hi - a))
    return tuple(src), tuple(dst)


def _batches(seg, padded, window, overlap):
    windows = _windows.window_slices(padded, window, overlap)
    while True:
        batch = list(itertools.islice(windows, seg.batch_size))
        if not batch:
            return
        yield batch


def _check_output(seg, y_shape, x_shape) -> None:
    if tuple(y_shape[:-1]) != tuple(x_shape[:-1]) or y_shape[-1] != seg.num_classes:
        raise SegmentationModelError(
            f"the model returned {tuple(y_shape)} for windows {tuple(x_shape)}: not a "
            f"per-pixel map of {seg.num_classes} classes; it must keep the input's spatial size."
        )


def blend_numpy(seg, arr, window, overlap, padded, pads, bar) -> np.ndarray:
    """The blended model output, float32 (K, Z, H, W) probabilities, on the host."""
    weight = _windows.importance_map(window, seg.blend)
    shape = arr.shape[:3]
    cin = arr.shape[3] if arr.ndim == 4 else 1
    acc = np.zeros((int(seg.num_classes), *shape), np.float32)
    wsum = np.zeros(shape, np.float32)
    prepare = seg.preprocess is None and bool(seg.intensity)
    for batch in _batches(seg, padded, window, overlap):
        x = np.zeros((len(batch), *window, cin), np.float32)
        where = []
        for i, win in enumerate(batch):
            src, dst = _regions(win, pads, shape)
            part = arr[src]
            if prepare:  # the border padding stays 0 after preparation, as in MONAI
                part = _segcard.apply_intensity(part.astype(np.float32), seg.intensity)
            x[(i, *dst)] = part if part.ndim == 4 else part[..., None]
            where.append((src, dst))
        y = seg._infer(x)
        for (src, dst), yi in zip(where, y, strict=True):
            w = weight[dst]
            acc[(slice(None), *src)] += np.moveaxis(yi[dst], -1, 0) * w
            wsum[src] += w
        bar.update(len(batch))
    acc /= wsum
    del wsum
    if seg.from_logits:
        _to_probabilities(acc)
    return acc


def _to_probabilities(acc: np.ndarray) -> None:
    """Softmax over the class axis (sigmoid for one channel), in place, slab by slab."""
    for z in range(acc.shape[1]):
        s = acc[:, z]
        if s.shape[0] == 1:
            np.negative(s, out=s)
            np.exp(s, out=s)
            s += 1
            np.reciprocal(s, out=s)
        else:
            s -= s.max(axis=0, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=0, keepdims=True)


def labels_of(acc, clock=NO_CLOCK) -> tuple[np.ndarray, np.ndarray | None]:
    """The label map of blended probabilities: argmax, or >= 0.5 for one channel. A NumPy
    array is (K, Z, H, W); a torch tensor (from :func:`blend_torch`) is channels-last
    (Z, H, W, K), its argmax taken on its device over contiguous classes, and with it come
    the sorted values present in the map, counted on the device (one small download instead
    of a pass over the whole map on the host); ``None`` for a NumPy array."""
    if isinstance(acc, np.ndarray):
        k = acc.shape[0]
        dtype = np.uint8 if k <= 256 else np.uint16
        if k == 1:
            return np.greater_equal(acc[0], 0.5).view(np.uint8), None
        # slab by slab: a whole-volume argmax over axis 0 would first copy the accumulators
        # (classes x volume) to a contiguous transposed buffer, then write int64 indices
        px = np.empty(acc.shape[1:], dtype)
        for z in range(acc.shape[1]):
            px[z] = np.argmax(acc[:, z], axis=0)
        clock.mark("argmax")
        return px, None
    import torch

    k = acc.shape[-1]
    dtype = np.uint8 if k <= 256 else np.uint16
    if k == 1:
        px = (acc[..., 0] >= 0.5).to(torch.uint8)
    else:
        px = torch.argmax(acc, dim=-1).to(torch.uint8 if k <= 256 else torch.int32)
    clock.mark("argmax")
    counts = torch.bincount(px.reshape(-1), minlength=max(k, 2))
    present = torch.nonzero(counts).reshape(-1).cpu().numpy()
    clock.mark("labels present")
    px = px.cpu().numpy()
    clock.mark("download")
    return px.astype(dtype, copy=False), present.astype(dtype)


def probabilities_of(acc) -> np.ndarray:
    """Blended probabilities as float32 (K, Z, H, W) on the host: a NumPy array as it is, a
    channels-last torch tensor class by class (no second classes x volume buffer on the
    device)."""
    if isinstance(acc, np.ndarray):
        return acc
    import torch

    out = np.empty((acc.shape[-1], *acc.shape[:-1]), np.float32)
    for c in range(acc.shape[-1]):
        torch.from_numpy(out[c]).copy_(acc[..., c])
    return out


def use_device(seg) -> bool:
    """Blend on the device: torch with a GPU (CUDA, MPS)."""
    forced = getattr(seg, "_device_blend", None)
    if forced is not None:
        return bool(forced)
    return seg._fn.backend == "torch" and seg.device.kind == "gpu"


# what is uploaded as it is and made float32 on the device (a quarter or half the bytes)
_UPLOADED_AS_IS = (np.float32, np.int16, np.uint8, np.int8)


def _upload(arr, dev):
    """The volume as a float32 (Z, H, W, C) tensor on ``dev`` that the caller may change."""
    import torch

    if arr.dtype.type in _UPLOADED_AS_IS:
        volume = torch.from_numpy(np.ascontiguousarray(arr)).to(dev)
    else:
        volume = torch.from_numpy(np.ascontiguousarray(arr, np.float32)).to(dev)
    if volume.dtype != torch.float32:
        volume = volume.float()
    elif volume.device.type == "cpu":
        volume = volume.clone()  # from_numpy shares the caller's memory
    return volume if volume.ndim == 4 else volume[..., None]


def blend_torch(seg, arr, window, overlap, padded, pads, bar, *, check_finite=None):
    """As :func:`blend_numpy`, in torch tensors on the model's device; returns a channels-last
    tensor (Z, H, W, K).

    The accumulators are channels-last as the model's output is, so each window is added
    over contiguous memory; the windows of a batch are cut into one input buffer reused from
    batch to batch; the weighting is done in place on the model's output. ``check_finite``
    (the volume's shape for the message) checks for NaN and infinity on the device, right
    after the upload, before the accumulators are allocated.
    """
    import keras
    import torch

    from m1vision.inference._segplan import nonfinite_error

    clock = clock_of(seg)
    dev = seg._fn._torch_device
    volume = _upload(arr, dev)
    clock.mark("upload")
    if check_finite is not None and not bool(torch.isfinite(volume).all()):
        bad = int(volume.numel() - torch.isfinite(volume).sum())
        raise nonfinite_error(bad, check_finite)
    if seg.preprocess is None and seg.intensity:  # before padding, as in MONAI
        _segcard.apply_intensity(volume, seg.intensity)
    shape = tuple(volume.shape[:3])
    cin = int(volume.shape[3])
    k = int(seg.num_classes)
    weight = torch.from_numpy(_windows.importance_map(window, seg.blend)).to(dev)
    weight_k = weight[..., None]  # broadcast over the classes, last
    acc = torch.zeros((*shape, k), dtype=torch.float32, device=dev)
    wsum = torch.zeros(shape, dtype=torch.float32, device=dev)
    slices = seg.mode == "slices"
    spatial = len(window) - 1 if slices else len(window)
    flips = _windows.mirror_flips(spatial) if seg.tta else [()]
    inputs = torch.empty((seg.batch_size, *window, cin), dtype=torch.float32, device=dev)
    clock.mark("prepare")
    with torch.no_grad(), keras.device(seg.device.name):
        for batch in _batches(seg, padded, window, overlap):
            x = inputs[: len(batch)]
            where = []
            for i, win in enumerate(batch):
                src, dst = _regions(win, pads, shape)
                if any(d.stop - d.start != w for d, w in zip(dst, window, strict=True)):
                    x[i].zero_()  # padding: zeros outside the volume
                x[(i, *dst)] = volume[src]
                where.append((src, dst))
            xin = x[:, 0] if slices else x
            clock.mark("cut windows")
            y = None
            for flip in flips:
                axes = tuple(a + 1 for a in flip)
                xi = torch.flip(xin, axes) if axes else xin
                yi = seg.model(xi, training=False)
                _check_output(seg, yi.shape, xin.shape)
                yi = torch.flip(yi, axes) if axes else yi
                y = yi.float() if y is None else y + yi
            if len(flips) > 1:
                y = y / len(flips)
            if slices:
                y = y[:, None]
            clock.mark("model")
            # weighted for the whole batch in one op, (B, *window, K) (in place on a model
            # output of its own memory), then summed in place
            fresh = y.dtype == torch.float32 and y.is_contiguous()
            y = y.mul_(weight_k) if fresh else y * weight_k
            for (src, dst), yi in zip(where, y, strict=True):
                acc[src] += yi[dst]
                wsum[src] += weight[dst]
            bar.update(len(batch))
            clock.mark("accumulate")
        del inputs, volume
        acc /= wsum[..., None]
        del wsum
        if seg.from_logits:
            acc = torch.sigmoid_(acc) if k == 1 else torch.softmax(acc, dim=-1)
    clock.mark("normalise")
    return acc
