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


def labels_of(acc) -> tuple[np.ndarray, np.ndarray | None]:
    """The label map of blended probabilities (K, Z, H, W): argmax, or >= 0.5 for one channel;
    a NumPy array or a torch tensor (argmax on its device). With a tensor also the sorted
    values present in the map, counted on the device (one small download instead of a pass
    over the whole map on the host); ``None`` for a NumPy array."""
    k = acc.shape[0]
    if isinstance(acc, np.ndarray):
        dtype = np.uint8 if k <= 256 else np.uint16
        if k == 1:
            return np.greater_equal(acc[0], 0.5).view(np.uint8), None
        # slab by slab: a whole-volume argmax over axis 0 would first copy the accumulators
        # (classes x volume) to a contiguous transposed buffer, then write int64 indices
        px = np.empty(acc.shape[1:], dtype)
        for z in range(acc.shape[1]):
            px[z] = np.argmax(acc[:, z], axis=0)
        return px, None
    import torch

    px = (acc[0] >= 0.5) if k == 1 else torch.argmax(acc, dim=0)
    px = px.to(torch.uint8 if k <= 256 else torch.int32)
    counts = torch.bincount(px.reshape(-1).to(torch.int32), minlength=max(k, 2))
    present = torch.nonzero(counts).reshape(-1).cpu().numpy()
    px = px.cpu().numpy()
    dtype = np.uint8 if k <= 256 else np.uint16
    return px.astype(dtype, copy=False), present.astype(dtype)


def use_device(seg) -> bool:
    """Blend on the device: torch with a GPU (CUDA, MPS)."""
    forced = getattr(seg, "_device_blend", None)
    if forced is not None:
        return bool(forced)
    return seg._fn.backend == "torch" and seg.device.kind == "gpu"


def blend_torch(seg, arr, window, overlap, padded, pads, bar):
    """As :func:`blend_numpy`, in torch tensors on the model's device; returns a tensor."""
    import keras
    import torch

    dev = seg._fn._torch_device
    volume = torch.from_numpy(np.ascontiguousarray(arr, np.float32)).to(dev)
    if volume.ndim == 3:
        volume = volume[..., None]
    if seg.preprocess is None and seg.intensity:  # on the device's copy, before padding
        if volume.device.type == "cpu":
            volume = volume.clone()  # from_numpy shares the caller's memory
        _segcard.apply_intensity(volume, seg.intensity)
    shape = tuple(volume.shape[:3])
    cin = int(volume.shape[3])
    weight = torch.from_numpy(_windows.importance_map(window, seg.blend)).to(dev)
    acc = torch.zeros((int(seg.num_classes), *shape), dtype=torch.float32, device=dev)
    wsum = torch.zeros(shape, dtype=torch.float32, device=dev)
    slices = seg.mode == "slices"
    spatial = len(window) - 1 if slices else len(window)
    flips = _windows.mirror_flips(spatial) if seg.tta else [()]
    with torch.no_grad(), keras.device(seg.device.name):
        for batch in _batches(seg, padded, window, overlap):
            x = torch.zeros((len(batch), *window, cin), dtype=torch.float32, device=dev)
            where = []
            for i, win in enumerate(batch):
                src, dst = _regions(win, pads, shape)
                x[(i, *dst)] = volume[src]
                where.append((src, dst))
            xin = x[:, 0] if slices else x
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
            # weighted for the whole batch in one op, (B, K, *window), then summed in place
            y = torch.movedim(y, -1, 1) * weight
            for (src, dst), yi in zip(where, y, strict=True):
                acc[(slice(None), *src)] += yi[(slice(None), *dst)]
                wsum[src] += weight[dst]
            bar.update(len(batch))
        acc /= wsum
        del wsum, volume
        if seg.from_logits:
            acc = torch.sigmoid(acc) if acc.shape[0] == 1 else torch.softmax(acc, dim=0)
    return acc
