"""The Segmenter's planning (internal, a mixin): the volume checked, the model's grid, the
windows, the memory it needs against ``max_memory``, the preparation."""

from __future__ import annotations

import numpy as np

from m1vision._checks import MEMORY_SHARE, format_size, physical_memory
from m1vision.errors import (
    InvalidImageError,
    InvalidParameterError,
    InvalidTypeError,
    MemoryBudgetError,
    SegmentationModelError,
)
from m1vision.inference import _windows
from m1vision.io import MedicalImage


def nonfinite_error(bad: int, shape) -> InvalidImageError:
    """The error for an image holding ``bad`` NaN or infinite values."""
    return InvalidImageError(
        f"image holds {bad} NaN or infinite value(s) (shape {tuple(shape)}); a model turns "
        "them into NaN everywhere they reach. Fix: replace them first, e.g. "
        "np.nan_to_num(pixels, nan=pixels[np.isfinite(pixels)].min())."
    )


class _Planning:
    """Segmenter methods that check the input and plan a run (no model call)."""

    def _volume(self, image, *, finite: bool = True) -> tuple[MedicalImage, bool]:
        """The input as a (Z, H, W) MedicalImage and whether it was 2-D, checked (for NaN and
        infinity too unless ``finite=False``: the device blend checks there)."""
        if isinstance(image, np.ndarray):
            image = MedicalImage(
                image, metadata={"layout": "volume" if image.ndim == 3 else "slice"}
            )
        if not isinstance(image, MedicalImage):
            raise InvalidTypeError(
                f"image must be a MedicalImage or a numpy.ndarray, got {type(image).__name__}; "
                "read a scan with m1vision.io.read_any."
            )
        px = image.pixels
        if px.size == 0:
            raise InvalidImageError(
                f"image is empty (shape {px.shape}); pass a volume with at least one voxel."
            )
        if px.ndim not in (2, 3) or image.metadata.get("layout") in ("color", "color-volume"):
            raise InvalidImageError(
                f"image must be a monochrome (Z, H, W) volume or (H, W) picture, got shape "
                f"{px.shape}; convert colour pictures to gray first."
            )
        if finite and px.dtype.kind == "f" and not np.isfinite(px).all():
            raise nonfinite_error(int(np.count_nonzero(~np.isfinite(px))), px.shape)
        if px.ndim == 2:
            meta = {**image.metadata, "layout": "volume"}
            spacing = None if image.spacing is None else (1.0, *tuple(image.spacing)[-2:])
            meta.pop("affine", None)
            return MedicalImage(
                px[None], spacing, image.window, image.modality, meta, image.source
            ), True
        return image, False

    def _target_spacing(self, spacing) -> tuple | None:
        if self.spacing is None or spacing is None:
            return None
        if self.rank == 3:
            target = self.spacing
        else:
            inplane = [a for a in range(3) if a != self.axis]
            target = list(spacing)
            for a, s in zip(inplane, self.spacing, strict=True):
                target[a] = s
            target = tuple(target)
        if np.allclose(target, spacing, rtol=1e-6, atol=0):
            return None
        return target

    def _windowing(self, shape) -> tuple[tuple, tuple, tuple]:
        """(window, overlap, padded shape) over the (slice axis first) model-grid shape."""
        if self.mode == "slices":
            inplane = shape[1:]
            win = tuple(
                w if w is not None else -(-s // d) * d
                for w, s, d in zip(self.window, inplane, self.divisible_by, strict=True)
            )
            window, overlap = (1, *win), (0.0, self.overlap, self.overlap)
        else:
            window = tuple(
                w if w is not None else -(-s // d) * d
                for w, s, d in zip(self.window, shape, self.divisible_by, strict=True)
            )
            overlap = (self.overlap,) * 3
        return window, overlap, _windows.padded_shape(shape, window)

    def estimate_memory(self, image, *, probabilities: bool = False) -> int:
        """Bytes :meth:`segment` allocates for ``image`` beyond the input (what
        ``max_memory`` is checked against)."""
        vol, _ = self._volume(image)
        return self._plan(vol, probabilities)["bytes"]

    def _plan(self, vol: MedicalImage, probabilities: bool) -> dict:
        from m1vision._resample import target_grid

        target = self._target_spacing(vol.spacing)
        shape = tuple(vol.shape)
        if target is not None:
            shape = tuple(target_grid(vol, spacing=target)[0])
        work = shape
        if self.mode == "slices":
            work = (shape[self.axis], *[s for a, s in enumerate(shape) if a != self.axis])
        window, overlap, padded = self._windowing(work)
        n = int(np.prod(work))
        k = int(self.num_classes)
        cin = int(self.channels or 1)
        out_src = int(np.prod(vol.shape))
        total = 4 * (k + 1) * n  # the accumulators
        total += 4 * n * cin if self.preprocess is not None else 0
        total += 4 * n if target is not None else 0
        if probabilities:  # the accumulators become the output, resampled: a copy
            total += 4 * k * out_src if target is not None else 0
        else:  # the label map (and on the model's grid before resampling)
            total += (1 if k <= 256 else 2) * (out_src + (n if target is not None else 0))
        flips = len(_windows.mirror_flips(3 if self.mode == "patches" else 2)) if self.tta else 1
        total += 4 * self.batch_size * int(np.prod(window)) * (cin + 2 * k) * min(flips, 2)
        return {
            "target": target,
            "work": work,
            "window": window,
            "overlap": overlap,
            "padded": padded,
            "bytes": int(total),
        }

    def _check_budget(self, plan: dict, shape) -> None:
        budget = self.max_memory
        source = f"max_memory={budget}"
        if budget is None:
            physical = physical_memory()
            if physical is None:
                return
            budget, source = int(physical * MEMORY_SHARE), "80 % of the physical memory"
        need = plan["bytes"]
        if need <= budget:
            return
        fixes = [f"a bigger budget (max_memory={need})"]
        if self.num_classes > 2:
            fixes.append("a model with fewer classes")
        if self.mode == "patches" and self.rank == 2:
            fixes.append("mode='slices'")
        fixes.append("a cropped or coarser volume (m1vision.volume.resample(image, spacing=...))")
        k = int(self.num_classes)
        voxels = int(np.prod(plan["work"]))
        raise MemoryBudgetError(
            f"segment: a volume of shape {tuple(shape)} ({format_size(4 * int(np.prod(shape)))} as "
            f"float32; model grid {plan['work']}) with {k} classes needs about "
            f"{format_size(need)} (Segmenter.estimate_memory: the blend's accumulators, "
            f"4 * ({k} + 1) bytes per voxel = {format_size(4 * (k + 1) * voxels)}, plus the output "
            f"and one batch of windows), more than the budget of {format_size(budget)} ({source}). "
            f"Nothing was allocated. Fix: {'; or '.join(fixes)}."
        )

    # -- preparation and the model -----------------------------------------------------------

    def _prepared(self, work: np.ndarray) -> np.ndarray:
        """The array windows are cut from: the input itself, or a prepared copy."""
        if self.preprocess is None:
            return work
        from m1vision.pipeline import Pipeline

        per_slice = self.mode == "slices" or isinstance(self.preprocess, Pipeline)
        if per_slice:
            first = np.asarray(self.preprocess(work[0]), np.float32)
            out = np.empty((work.shape[0], *first.shape), np.float32)
            out[0] = first
            for z in range(1, work.shape[0]):
                out[z] = self.preprocess(work[z])
        else:
            out = np.asarray(self.preprocess(work), np.float32)
        spatial = out.shape[:3]
        if spatial != work.shape or out.ndim not in (3, 4):
            raise InvalidParameterError(
                f"preprocess changed the volume's shape from {work.shape} to {out.shape}; it "
                "may only add a trailing channel axis (resampling is the model card's "
                "'spacing', padding the Segmenter's)."
            )
        return out

    def _check_channels(self, arr: np.ndarray) -> None:
        have = arr.shape[3] if arr.ndim == 4 else 1
        if self.channels is not None and have != self.channels:
            raise SegmentationModelError(
                f"the model takes {self.channels} channel(s) (input {self.input_shape}), the "
                f"prepared volume has {have}. Fix: preprocess= returning (..., "
                f"{self.channels}) arrays (e.g. np.repeat(v[..., None], {self.channels}, -1)), "
                "or a model of the volume's channels."
            )
