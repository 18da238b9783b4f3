"""m1vision.io bad inputs: always ImageReadError naming the file; damaged rasters detected."""

from __future__ import annotations

import pytest
from conftest import CORRUPT_KINDS

from m1vision.errors import (
    ImageReadError,
)
from m1vision.io import (
    read_any,
    read_image,
)

# --------------------------------------------------------------------------------------------
# bad inputs: always ImageReadError naming the file and the reason
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CORRUPT_KINDS), ids=list(CORRUPT_KINDS))
def test_bad_input_raises_image_read_error_naming_the_file(corrupt_files, kind):
    path = corrupt_files[kind]
    with pytest.raises(ImageReadError) as info:
        read_any(path)
    err = info.value
    assert err.path == str(path)
    assert str(path) in str(err)
    assert CORRUPT_KINDS[kind] in str(err)
    assert isinstance(err, OSError)  # callers catching OSError see it too


@pytest.mark.parametrize(
    "kind",
    ["truncated_png", "bad_crc_png", "truncated_jpeg", "truncated_bmp", "text_named_png"],
    ids=["truncated_png", "bad_crc_png", "truncated_jpeg", "truncated_bmp", "text_named_png"],
)
def test_read_image_detects_damage_opencv_would_decode(corrupt_files, kind):
    path = corrupt_files[kind]
    with pytest.raises(ImageReadError, match=CORRUPT_KINDS[kind]):
        read_image(path)
