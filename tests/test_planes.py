"""m1vision.planes: planes, physical aspect, orientation letters, picture <-> voxel <-> RAS."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest

from m1vision.data import volume as sample_volume
from m1vision.errors import InvalidImageError, InvalidParameterError
from m1vision.planes import (
    PLANES,
    PlaneCache,
    TriPlanarParams,
    default_affine,
    display_shape,
    display_to_voxel,
    draw_crosshair,
    extract_plane,
    letter_boxes,
    orientation_letters,
    plane_geometry,
    render_plane,
    resize_plane,
    slice_after_key,
    slice_position_text,
    stretches_slices,
    value_at,
    volume_geometry,
    voxel_to_display,
    voxel_to_ras,
)
from m1vision.preprocess import canny, gaussian_blur, window

OPPOSITE = dict(zip("RASLPI", "LPIRAS", strict=True))


def _affines():
    """Axis permutations and flips of a spacing (1.5, 0.7, 0.9) grid, with an origin."""
    out = {}
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            a = np.zeros((4, 4))
            for voxel_axis, (ras_axis, sign) in enumerate(zip(perm, signs, strict=True)):
                a[ras_axis, voxel_axis] = sign * (1.5, 0.7, 0.9)[voxel_axis]
            a[:3, 3] = (10.0, -20.0, 30.0)
            a[3, 3] = 1.0
            out["".join(nib.aff2axcodes(a))] = a
    return out


AFFINES = _affines()


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("codes", list(AFFINES), ids=list(AFFINES))
def test_letters_agree_with_nibabel_for_any_orientation(codes, plane):
    letters = orientation_letters(AFFINES[codes], plane)
    _, v_axis, v_flip, h_axis, h_flip = plane_geometry(plane)
    # nibabel names the direction each voxel axis increases to
    down = OPPOSITE[codes[v_axis]] if v_flip else codes[v_axis]
    right = OPPOSITE[codes[h_axis]] if h_flip else codes[h_axis]
    assert letters == {
        "top": OPPOSITE[down],
        "bottom": down,
        "left": OPPOSITE[right],
        "right": right,
    }


def test_the_package_layout_reads_as_radiologists_expect():
    affine = np.asarray(sample_volume().metadata["affine"])  # a real NIfTI through read_nifti
    assert orientation_letters(affine, "axial") == {
        "top": "A", "bottom": "P", "left": "R", "right": "L"
    }  # fmt: skip
    assert orientation_letters(affine, "coronal") == {
        "top": "S", "bottom": "I", "left": "R", "right": "L"
    }  # fmt: skip
    assert orientation_letters(affine, "sagittal") == {
        "top": "S", "bottom": "I", "left": "A", "right": "P"
    }  # fmt: skip
    assert np.allclose(default_affine((2.0, 2.0, 2.0))[:3, :3], affine[:3, :3])


@pytest.mark.parametrize("codes", ["SPL", "IAR", "LPS"], ids=["SPL", "IAR", "LPS"])
@pytest.mark.parametrize(
    "voxel", [(0, 0, 0), (3, 7, 11), (9, 1, 4)], ids=["origin", "inner", "far-corner"]
)
def test_voxel_to_ras_equals_nibabel_apply_affine(codes, voxel):
    affine = AFFINES[codes]
    assert np.allclose(voxel_to_ras(affine, voxel), nib.affines.apply_affine(affine, voxel))


@pytest.fixture(scope="module")
def numbered() -> np.ndarray:
    """Every voxel a different value: a picture pixel names its voxel."""
    return np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)


@pytest.mark.parametrize("plane", PLANES)
def test_each_picture_pixel_is_the_voxel_display_to_voxel_names(numbered, plane):
    s_axis = plane_geometry(plane)[0]
    for index in range(numbered.shape[s_axis]):
        shown = extract_plane(numbered, plane, index)
        for y, x in np.ndindex(*shown.shape):
            voxel = display_to_voxel(plane, index, (x + 0.5, y + 0.5), shown.shape, numbered.shape)
            assert voxel[s_axis] == index
            assert shown[y, x] == value_at(numbered, voxel)


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("hw", [(50, 70), (13, 200)], ids=["50x70", "13x200"])
def test_voxel_to_display_and_back_is_the_identity(numbered, plane, hw):
    for voxel in np.ndindex(*numbered.shape):
        xy = voxel_to_display(plane, voxel, hw, numbered.shape)
        s_axis = plane_geometry(plane)[0]
        assert display_to_voxel(plane, voxel[s_axis], xy, hw, numbered.shape) == voxel


@pytest.mark.parametrize("plane", PLANES)
def test_pictures_have_the_physical_aspect(plane):
    shape, spacing = (30, 200, 160), (4.0, 0.6, 0.8)
    height, width = display_shape(shape, spacing, plane, max_size=300)
    _, v_axis, _, h_axis, _ = plane_geometry(plane)
    mm = (shape[v_axis] * spacing[v_axis], shape[h_axis] * spacing[h_axis])
    assert max(height, width) == 300
    assert abs(height / width - mm[0] / mm[1]) < 2.0 / min(height, width)


def test_an_object_without_pixels_is_refused():
    vol = nib.Nifti1Image(np.zeros((30, 64, 48), np.float32), np.eye(4))  # read it first
    with pytest.raises(TypeError, match="MedicalImage"):
        volume_geometry(vol)


class _Volume:  # a MedicalImage-like input without io
    def __init__(self, pixels, spacing, affine=None):
        self.pixels, self.spacing = pixels, spacing
        self.metadata = {} if affine is None else {"affine": affine}


@pytest.mark.parametrize("plane", PLANES)
def test_render_is_window_edges_then_physical_aspect(plane):
    rng = np.random.default_rng(0)
    pixels = rng.normal(0, 300, (12, 40, 40)).astype(np.float32)
    params = TriPlanarParams(
        index=(6, 20, 20), center=0.0, width=800.0, edges=True, low=40, high=90,
        crosshair=False, max_size=40,
    )  # fmt: skip
    picture = render_plane(_Volume(pixels, (1.0, 1.0, 1.0)), plane, params)
    s_axis = plane_geometry(plane)[0]
    native = extract_plane(pixels, plane, params.index[s_axis])
    windowed = window(native, center=0.0, width=800.0)
    edges = canny(gaussian_blur(windowed, ksize=5), low=40, high=90)
    assert picture.shape[:2] == display_shape(pixels.shape, (1, 1, 1), plane, max_size=40)
    if picture.shape[:2] == native.shape:  # no resize: exact
        expected = np.repeat(windowed[:, :, None], 3, axis=2)
        expected[edges > 0] = (0, 255, 0)
        assert np.array_equal(picture, expected)
    else:
        assert np.count_nonzero(np.all(picture == (0, 255, 0), axis=2)) > 0


def test_cache_recomputes_only_the_plane_whose_slice_moved():
    cache = PlaneCache(np.zeros((10, 20, 30), np.float32))
    p = TriPlanarParams(index=(5, 10, 15), center=0.0, width=1.0, max_size=32)
    for plane in PLANES:
        cache.render(plane, p)
    moved = p.replace(index=(6, 10, 15))
    for plane in PLANES:
        cache.render(plane, moved)
    assert dict(cache.counts) == {"axial": 2, "coronal": 1, "sagittal": 1}


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("edges", [False, True], ids=["gray", "edges"])
def test_crosshair_passes_through_the_crosshair_voxel(edges, plane):
    cache = PlaneCache(np.zeros((10, 20, 30), np.float32))
    p = TriPlanarParams(index=(2, 5, 25), center=0.0, width=1.0, max_size=240, edges=edges)
    picture = cache.render(plane, p)
    assert picture.ndim == (3 if edges else 2)
    x, y = voxel_to_display(plane, p.index, picture.shape[:2], (10, 20, 30))
    row, col = picture[int(y), 1:3], picture[1:3, int(x)]  # away from the letters
    if edges:  # amber lines
        assert (row == (0, 200, 255)).all() and (col == (0, 200, 255)).all()
    else:  # white then black dashes of 4 pixels from the edges
        assert row.tolist() == [255, 255] and col.tolist() == [255, 255]
        assert picture[int(y), 5] == 0 and picture[5, int(x)] == 0


BAD = {
    "2-D": (lambda: volume_geometry(np.zeros((4, 4), np.float32)), InvalidImageError, "3-D"),
    "bad spacing": (
        lambda: volume_geometry(_Volume(np.zeros((2, 2, 2)), (1.0, 0.0, 1.0))),
        InvalidParameterError,
        "spacing",
    ),
    "singular affine": (
        lambda: volume_geometry(_Volume(np.zeros((2, 2, 2)), (1, 1, 1), np.zeros((4, 4)))),
        InvalidParameterError,
        "affine",
    ),
    "index past the end": (
        lambda: extract_plane(np.zeros((2, 3, 4)), "sagittal", 4),
        InvalidParameterError,
        "index must be < 4",
    ),
    "unknown plane": (lambda: plane_geometry("oblique"), InvalidParameterError, "plane"),
    "nan window": (
        lambda: TriPlanarParams(center=float("nan"), width=1.0),
        InvalidParameterError,
        "finite",
    ),
    "low > high": (lambda: TriPlanarParams(low=100, high=10), InvalidParameterError, "low"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input_is_refused_with_a_named_error(case):
    call, error, match = BAD[case]
    with pytest.raises(error, match=match):
        call()


# -- the explorers' face: letters clear of the crosshair, smooth thick slices, keys, mm --------
@pytest.mark.parametrize("gray", [True, False], ids=["gray", "bgr"])
@pytest.mark.parametrize("plane", PLANES)
def test_the_crosshair_never_strikes_a_letter(plane, gray):
    letters = orientation_letters(default_affine((1, 1, 1)), plane)
    shape = (120, 160) if gray else (120, 160, 3)
    picture = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    hw = picture.shape[:2]
    boxes = letter_boxes(hw, letters)
    # through the middle the lines cross the four letters; at a quarter they cross none
    struck = draw_crosshair(picture, (hw[1] // 2, hw[0] // 2), letters)
    clear = draw_crosshair(picture, (hw[1] // 4, hw[0] // 4), letters)
    for edge, (x0, y0, x1, y1) in boxes.items():
        assert x0 < hw[1] // 2 < x1 or y0 < hw[0] // 2 < y1, edge  # the middle line meets it
        assert not (x0 <= hw[1] // 4 < x1 or y0 <= hw[0] // 4 < y1), edge
        assert np.array_equal(struck[y0:y1, x0:x1], clear[y0:y1, x0:x1]), edge
        # the letter is drawn in its box: the box differs from the bare picture
        assert not np.array_equal(struck[y0:y1, x0:x1], picture[y0:y1, x0:x1]), edge
    # and the lines are there everywhere else: just below the top letter's box
    x, below = hw[1] // 2, boxes["top"][3]
    line = struck[below : boxes["bottom"][1], x]
    assert not np.array_equal(line, picture[below : boxes["bottom"][1], x])


def _linear_rows_reference(picture: np.ndarray, height: int) -> np.ndarray:
    """Slow and obvious: each display row samples the slices linearly at its centre."""
    n = picture.shape[0]
    centres = np.clip((np.arange(height) + 0.5) * n / height - 0.5, 0, n - 1)
    out = np.empty((height, picture.shape[1]))
    for col in range(picture.shape[1]):
        out[:, col] = np.interp(centres, np.arange(n), picture[:, col].astype(np.float64))
    return out


@pytest.mark.parametrize(("n", "height"), [(5, 40), (12, 50), (3, 7)], ids=str)
def test_linear_rows_interpolate_between_slice_centres(n, height):
    picture = np.random.default_rng(n).integers(0, 256, (n, 9), dtype=np.uint8)
    got = resize_plane(picture, (height, 9), linear_rows=True)
    assert got.shape == (height, 9)
    assert np.abs(got - _linear_rows_reference(picture, height)).max() <= 1.0  # uint8 rounding
    nearest = resize_plane(picture, (height, 9))
    assert set(np.unique(nearest)) <= set(np.unique(picture))  # nearest only repeats


@pytest.mark.parametrize(
    ("shape", "spacing", "expected"),
    [
        ((40, 512, 512), (5.0, 0.7, 0.7), {"axial": False, "coronal": True, "sagittal": True}),
        ((64, 64, 64), (1.0, 1.0, 1.0), {"axial": False, "coronal": False, "sagittal": False}),
        ((200, 64, 64), (0.5, 1.0, 1.0), {"axial": False, "coronal": False, "sagittal": False}),
    ],
    ids=["thick", "isotropic", "thin"],
)
def test_only_stretched_slices_are_smoothed(shape, spacing, expected):
    got = {p: stretches_slices(p, shape, display_shape(shape, spacing, p)) for p in PLANES}
    assert got == expected


@pytest.mark.parametrize("edges", [False, True], ids=["gray", "edges"])
def test_smooth_shows_thick_slices_linearly_and_keeps_edges_on_their_voxels(edges):
    z = np.arange(8, dtype=np.float32)[:, None, None]
    pixels = np.broadcast_to(z * 100.0, (8, 32, 32)).copy()
    pixels[:, 10:20, 10:20] += 300.0
    volume = _Volume(pixels, (6.0, 1.0, 1.0))
    p = TriPlanarParams(index=(4, 16, 16), center=500.0, width=1200.0, edges=edges,
                        low=30, high=60, crosshair=False, max_size=96)  # fmt: skip
    sharp = render_plane(volume, "coronal", p)
    smooth = render_plane(volume, "coronal", p.replace(smooth=True))
    assert sharp.shape == smooth.shape
    gray = (lambda a: a[:, :, 0]) if edges else (lambda a: a)
    column = 2  # outside the square: the z ramp alone
    assert len(np.unique(gray(sharp)[:, column])) == 8  # stairs: one value per slice
    assert len(np.unique(gray(smooth)[:, column])) > 30  # a ramp
    if edges:  # the green edges are where nearest neighbour puts them
        green = np.all(smooth == (0, 255, 0), axis=2)
        assert green.any() and np.array_equal(green, np.all(sharp == (0, 255, 0), axis=2))
    assert np.array_equal(render_plane(volume, "axial", p.replace(smooth=True)),
                          render_plane(volume, "axial", p))  # fmt: skip


def test_the_cache_keeps_smooth_apart():
    cache = PlaneCache(_Volume(np.zeros((4, 16, 16), np.float32), (5.0, 1.0, 1.0)))
    p = TriPlanarParams(index=(2, 8, 8), center=0.0, width=1.0, max_size=32)
    cache.render("coronal", p)
    cache.render("coronal", p.replace(smooth=True))
    cache.render("coronal", p.replace(smooth=True, index=(3, 8, 8)))  # not its slice: cached
    assert cache.counts["coronal"] == 2


@pytest.mark.parametrize(
    ("key", "index", "expected"),
    [("ArrowUp", 5, 6), ("ArrowRight", 5, 6), ("ArrowDown", 5, 4), ("ArrowLeft", 0, 0),
     ("ArrowUp", 39, 39), ("PageUp", 35, 39), ("PageDown", 15, 5), ("Home", 17, 0),
     ("End", 3, 39), ("a", 5, None), ("Enter", 5, None)],
    ids=lambda v: str(v),
)  # fmt: skip
def test_slice_keys(key, index, expected):
    assert slice_after_key(key, index, 40) == expected


@pytest.mark.parametrize("codes", ["LPS", "RAS", "SAL", "IPR"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_position_is_the_world_coordinate_along_the_axis(codes, axis):
    affine = AFFINES[codes]
    voxel = (3, 7, 2)
    world_axis = "RAS".index(OPPOSITE.get(codes[axis], codes[axis])
                             if codes[axis] in "LPI" else codes[axis])  # fmt: skip
    mm = nib.affines.apply_affine(affine, voxel)[world_axis]
    letter = "RAS"[world_axis] if mm >= 0 else "LPI"[world_axis]
    assert slice_position_text(affine, axis, voxel) == f"{letter} {abs(mm):.1f} mm"


BAD_PLANE_INPUT = {
    "extract-list": (lambda: extract_plane([[1]], "axial", 0), TypeError, "pixels", "read_any"),
    "extract-2d": (
        lambda: extract_plane(np.zeros((4, 4)), "axial", 0),
        InvalidImageError,
        "pixels",
        "2-D image",
    ),
    "extract-index": (
        lambda: extract_plane(np.zeros((2, 3, 4)), "coronal", 3),
        InvalidParameterError,
        "index",
        "pass 0 to 2",
    ),
    "value-two": (
        lambda: value_at(np.zeros((2, 3, 4)), (1, 1)),
        InvalidParameterError,
        "voxel",
        "voxel=(0, 0, 0)",
    ),
    "value-outside": (
        lambda: value_at(np.zeros((2, 3, 4)), (1, 3, 0)),
        InvalidParameterError,
        "voxel",
        "below the volume's size",
    ),
    "resize-hw": (
        lambda: resize_plane(np.zeros((4, 4), np.uint8), 8),
        InvalidParameterError,
        "display_hw",
        "(height, width)",
    ),
    "crosshair-float": (
        lambda: draw_crosshair(np.zeros((8, 8), np.float32), (1, 1), {}),
        InvalidImageError,
        "picture",
        "render_plane(volume, plane, params)",
    ),
    "crosshair-xy": (
        lambda: draw_crosshair(np.zeros((8, 8), np.uint8), 3, {}),
        InvalidParameterError,
        "xy",
        "xy=(x, y)",
    ),
    "crosshair-letters": (
        lambda: draw_crosshair(np.zeros((8, 8), np.uint8), (1, 1), {"north": "A"}),
        InvalidParameterError,
        "letters",
        "orientation_letters(affine, plane)",
    ),
    "key-count-0": (
        lambda: slice_after_key("End", 0, 0),
        InvalidParameterError,
        "count",
        "pass 1 or more",
    ),
    "resize-picture": (
        lambda: resize_plane(None, (8, 8)),
        InvalidImageError,
        "picture",
        "extract_plane",
    ),
}


@pytest.mark.parametrize(
    ("call", "error", "argument", "fix"), BAD_PLANE_INPUT.values(), ids=BAD_PLANE_INPUT
)
def test_bad_plane_input_names_the_argument_and_the_fix(call, error, argument, fix):
    from m1vision.errors import M1VisionError

    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, M1VisionError)
    message = str(info.value)
    assert message.startswith(f"{argument} must be"), message
    assert fix in message, message


def test_a_key_that_is_no_string_moves_no_slice():
    assert slice_after_key(["ArrowUp"], 3, 10) is None
