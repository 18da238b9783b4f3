"""Generated, deterministic test and demonstration data: pictures, a CT phantom, DICOM files.

No medical data can be downloaded here, so everything m1vision learns from or is tested on
beyond pydicom's own files is made in code, from a seed: the same call gives the same arrays
and writes the same bytes on any machine with the same library versions (DICOM UIDs derive
from the seed through :func:`pydicom.uid.generate_uid` with ``entropy_srcs``).

The lesion data set
-------------------
A generated, deterministic CT-like "lesion present / absent" data set with masks. The demo
model (``data/models/lesion_cnn``) learns from pictures made on the fly: real CT slices
shipped with pydicom (``CT_small.dcm``, a 128x128 slice of the spine and back muscles, and
``693_J2KI.dcm``, a 512x512 head CT in JPEG 2000) and the Shepp-Logan phantom of
scikit-image, each

* augmented: flipped, rotated (+-25 degrees), cropped (55-100 % of the side) and resized,
  then windowed with a jittered window (CT, in Hounsfield units) or a jittered gain and
  offset (phantom), a gamma jitter and a slight blur;
* for a "lesion" case, given one round or elliptical lesion placed *inside the body*
  (wholly within the body outline, which is found by thresholding the slice), of varied
  size (semi-axes 6-14 px at 128 px), orientation, contrast (50-110 gray levels, brighter or
  darker than its surroundings), soft edge and faint inner texture;
* finished with Gaussian noise of a random level (the same for both classes) and
  quantised to ``uint8``.

Everything is drawn from one :class:`numpy.random.Generator` per case, seeded by
``(seed, case index)``, and the image operations are OpenCV's deterministic ones, so the
same ``seed`` gives byte-identical data on any machine with the same library versions.

This is a toy task for demonstrations and tests of the inference and explanation code.
It is not a model of real pathology.

Where things are
----------------
==============================  ==============================================================
name                            what it is (module)
==============================  ==============================================================
:func:`make_lesion_dataset`     CT-like pictures with or without a lesion, and the masks
                                (``_lesions``)
:class:`LesionDataset`          what it returns (``_lesions``)
:func:`split_indices`           a seeded (train, test) split of ``range(n)`` (``_lesions``)
:data:`LABELS`                  the class names, index = label (``_lesions``)
:data:`SOURCES`                 the base images the cases are made from (``_lesions``)
:func:`ct_phantom`              a 3-D CT phantom in HU, in the package's volume layout
                                (``_phantom``)
:func:`ct_phantom_labels`       its organs as a label map, voxel for voxel (``_phantom``)
:data:`PHANTOM_LABELS`          the organs' label values, names and colours (``_phantom``)
:func:`write_ct_series`         the phantom as a DICOM CT (or MR) series, one file per slice
                                (``_series``)
:data:`SERIES_VARIANTS`         the regular series and each irregular kind (``_series``)
:class:`GeneratedSeries`        what it wrote and what a correct reader returns (``_series``)
:func:`write_enhanced`          the phantom as one Enhanced CT/MR multi-frame object beside
                                its classic series (``_enhanced``)
:data:`ENHANCED_VARIANTS`       the series variants it writes (``_enhanced``)
:class:`GeneratedEnhanced`      what it wrote (``_enhanced``)
:func:`write_messy_collection`  a messy collection of series and odd files, as archives
                                hand them out (``_collection``)
:data:`MESSY_SERIES`            the series it writes (``_collection``)
:class:`GeneratedCollection`    what it wrote and what an audit must find (``_collection``)
==============================  ==============================================================

The phantom's organ description (``_phantom._phantom_parts``) is painted by both
:func:`ct_phantom` and :func:`ct_phantom_labels`; its grid's geometry
(``_phantom._layout_to_lps``) is the one every series writer stores.
"""

from __future__ import annotations

from m1vision.synthetic._collection import MESSY_SERIES, GeneratedCollection, write_messy_collection
from m1vision.synthetic._enhanced import ENHANCED_VARIANTS, GeneratedEnhanced, write_enhanced
from m1vision.synthetic._lesions import (
    LABELS,
    SOURCES,
    LesionDataset,
    make_lesion_dataset,
    split_indices,
)
from m1vision.synthetic._phantom import PHANTOM_LABELS, ct_phantom, ct_phantom_labels
from m1vision.synthetic._series import SERIES_VARIANTS, GeneratedSeries, write_ct_series

__all__ = [
    "ENHANCED_VARIANTS",
    "LABELS",
    "MESSY_SERIES",
    "PHANTOM_LABELS",
    "SERIES_VARIANTS",
    "SOURCES",
    "GeneratedCollection",
    "GeneratedEnhanced",
    "GeneratedSeries",
    "LesionDataset",
    "ct_phantom",
    "ct_phantom_labels",
    "make_lesion_dataset",
    "split_indices",
    "write_ct_series",
    "write_enhanced",
    "write_messy_collection",
]
