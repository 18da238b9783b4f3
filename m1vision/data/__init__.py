"""Sample images that work offline: real DICOM/NIfTI test files shipped inside installed
packages, a Shepp-Logan phantom, and small generated files in the repository's ``data/samples``.

Nothing is ever downloaded: pydicom's files are looked up with
``pydicom.data.get_testdata_file(name, download=False)``, which only searches the installed
package (and pydicom's local cache).

==================  ============  ==================  ==============================================
loader              shape         dtype               source (licence)
==================  ============  ==================  ==============================================
:func:`ct_slice`    (128, 128)    float32, HU         pydicom CT_small.dcm (MIT)
:func:`ct_slice_512` (512, 512)   float32, HU         pydicom 693_J2KI.dcm, JPEG 2000 (MIT)
:func:`mr_slice`    (64, 64)      float32             pydicom MR_small.dcm (MIT)
:func:`volume`      (25, 41, 33)  float32             nibabel anatomical.nii (MIT)
:func:`dose_volume` (15, 10, 10)  float32, rel. dose  pydicom rtdose.dcm (MIT)
:func:`phantom`     (512, 512)    uint16              scikit-image Shepp-Logan (BSD-3-Clause)
:func:`ct_series`   (64, 256, 256) float32, HU        generated DICOM series (:func:`ct_series_dir`)
==================  ============  ==================  ==============================================

:data:`SAMPLES` lists these and the generated files (``python tools/make_sample_data.py``),
each with description, shape, dtype, source and licence; :func:`sample_path` finds any by name.

Where things are (private parts):

==============  ===============================================================================
``_catalogue``  :class:`SampleInfo` and :data:`SAMPLES`: every sample, its source and licence
``_places``     folders and paths: :func:`data_root`, :func:`model_path`, :func:`samples_dir`,
                :func:`batch_dir`, :func:`cache_dir`, :func:`sample_path`
``_loaders``    the loaders of the real test files, and :func:`phantom`
``_series``     the generated CT series: :func:`ct_series_dir`, :func:`ct_series`
==============  ===============================================================================
"""

from __future__ import annotations

from m1vision.data._catalogue import SAMPLES, SampleInfo
from m1vision.data._loaders import ct_slice, ct_slice_512, dose_volume, mr_slice, phantom, volume
from m1vision.data._places import (
    batch_dir,
    cache_dir,
    data_root,
    model_path,
    sample_path,
    samples_dir,
)
from m1vision.data._series import ct_series, ct_series_dir

__all__ = [
    "SAMPLES",
    "SampleInfo",
    "batch_dir",
    "cache_dir",
    "ct_series",
    "ct_series_dir",
    "ct_slice",
    "ct_slice_512",
    "data_root",
    "dose_volume",
    "model_path",
    "mr_slice",
    "phantom",
    "sample_path",
    "samples_dir",
    "volume",
]
