"""HTJ2K (JPEG 2000 Part 15) DICOM with real HT codestreams: CT-like images encoded here by
OpenJPH (through imagecodecs, a test dependency), wrapped by pydicom in the three HTJ2K
transfer syntaxes and read by read_dicom and read_series, which decode them with OpenJPEG's
HT block decoder (pylibjpeg-openjpeg). Lossless streams give back the stored values exactly,
after the rescale; GDCM (through SimpleITK) decodes the same files to the same values.

The codestreams are checked to really be HT coded (the CAP marker with the Part 15 bit, the
HT code-block style bit in COD), so a Part 1 stream cannot pass for one.
"""

from __future__ import annotations

import struct

import imagecodecs
import numpy as np
import pydicom
import pytest
from conftest import pydicom_file
from numpy.testing import assert_array_equal
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import (
    HTJ2K,
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    generate_uid,
)
from test_io_codecs import gdcm_pixels

from m1vision.io import read_dicom, read_series

# --------------------------------------------------------------------------------------------
# the codestream: its main header read, a TLM marker added
# --------------------------------------------------------------------------------------------

PROGRESSIONS = ("LRCP", "RLCP", "RPCL", "PCRL", "CPRL")
MARKERS = {0xFF50: "CAP", 0xFF51: "SIZ", 0xFF52: "COD", 0xFF55: "TLM", 0xFF5C: "QCD"}


def main_header(stream: bytes) -> dict:
    """What a JPEG 2000 codestream's main header (T.800 A.5-A.7, T.814 A.2-A.3) declares.

    ``markers`` (names in order, up to the first SOT), ``sot`` (its offset), from SIZ
    ``precision`` and ``signed`` (first component), from CAP ``part15`` (Pcap bit 15), from COD
    ``ht`` (code-block style bit 0x40, the HT block coder), ``progression``, ``levels`` and
    ``reversible`` (the 5/3 wavelet).
    """
    assert stream[:2] == b"\xff\x4f", "a codestream starts with SOC"
    out = {"markers": [], "part15": False}
    i = 2
    while (marker := struct.unpack_from(">H", stream, i)[0]) != 0xFF90:  # SOT ends it
        length = struct.unpack_from(">H", stream, i + 2)[0]
        segment = stream[i + 4 : i + 2 + length]
        out["markers"].append(MARKERS.get(marker, f"{marker:04X}"))
        if marker == 0xFF51:
            width, height, x0, y0 = struct.unpack_from(">IIII", segment, 2)
            ssiz = segment[36]
            out |= {"size": (height - y0, width - x0), "precision": (ssiz & 0x7F) + 1}
            out["signed"] = bool(ssiz & 0x80)
        elif marker == 0xFF50:
            out["part15"] = bool(struct.unpack_from(">I", segment)[0] & (1 << (32 - 15)))
        elif marker == 0xFF52:
            out["progression"] = PROGRESSIONS[segment[1]]
            out["levels"], style, wavelet = segment[5], segment[8], segment[9]
            out |= {"ht": bool(style & 0x40), "reversible": wavelet == 1}
        i += 2 + length
    out["sot"] = i
    return out


def with_tlm(stream: bytes) -> bytes:
    """The codestream with a TLM marker (T.800 A.7.1) for its one tile-part, inserted before
    the SOT: Stlm 0x40 (no Ttlm, 32-bit Ptlm), Ptlm = the tile-part's length, Psot.

    DICOM's HTJ2K Lossless RPCL syntax asks for TLM (PS3.5 10.18); imagecodecs' htj2k_encode
    of the pinned release has no option for it. A pointer marker: the coded data are unchanged.
    """
    sot = main_header(stream)["sot"]
    psot = struct.unpack_from(">I", stream, sot + 6)[0]
    assert stream[sot + psot : sot + psot + 2] == b"\xff\xd9", "one tile-part, then EOC"
    tlm = struct.pack(">HHBBI", 0xFF55, 8, 0, 0x40, psot)
    return stream[:sot] + tlm + stream[sot:]


def ht_stream(stored: np.ndarray, syntax) -> bytes:
    """A reversible HT codestream of ``stored`` for ``syntax`` (with TLM for the RPCL one)."""
    stream = bytes(imagecodecs.htj2k_encode(stored, reversible=True))
    return with_tlm(stream) if syntax == HTJ2KLosslessRPCL else stream


# --------------------------------------------------------------------------------------------
# CT-like images and their DICOM files
# --------------------------------------------------------------------------------------------

#: kind -> how the image is stored: dtype, BitsStored, RescaleSlope, RescaleIntercept, and the
#: stored value of the pixels outside the field of view (the largest value, or signed padding)
KINDS = {
    "u8": (np.uint8, 8, 8.0, -1024.0, 255),
    "u12": (np.uint16, 12, 1.0, -1024.0, 4095),
    "u16": (np.uint16, 16, 0.5, -1024.0, 65535),
    "s16": (np.int16, 16, 1.0, -1024.0, -2000),
}
SYNTAXES = [HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K]
SYNTAX_IDS = ["lossless-201", "rpcl-202", "htj2k-203"]


def ct_stored(kind: str, shape=(128, 96), seed=0) -> np.ndarray:
    """A CT-like slice of ``kind``'s stored values: air, a body ellipse of soft tissue with
    noise, a bone ring, and the corners outside a round field of view at ``KINDS[kind][4]``."""
    dtype, bits, slope, intercept, outside = KINDS[kind]
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1 : 1 : shape[0] * 1j, -1 : 1 : shape[1] * 1j]
    r = np.hypot(x / 0.8, y / 0.6)
    hu = np.where(r < 1, 40.0, -1000.0) + rng.normal(0, 25, shape)
    hu[(r > 0.7) & (r < 0.8)] = 1200.0 + 50 * seed
    signed = np.issubdtype(dtype, np.signedinteger)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    stored = np.clip(np.round((hu - intercept) / slope), lo, hi)
    stored[np.hypot(x, y) > 1] = outside
    return stored.astype(dtype)


def ct_file(path, stored, kind, syntax, *, stream=None, z=0.0, series_uid=None, k=0):
    """Write ``stored`` as a CT Image in ``syntax``: native pixels for Explicit VR Little
    Endian, else ``stream`` (default: ``ht_stream(stored, syntax)``) encapsulated."""
    dtype, bits, slope, intercept, _ = KINDS[kind]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["m1vision-htj2k", kind, str(syntax), str(k)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["m1vision-htj2k-study"])
    ds.SeriesInstanceUID = series_uid or generate_uid(entropy_srcs=["m1vision-htj2k", kind])
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=["m1vision-htj2k-frame"])
    ds.Modality = "CT"
    ds.InstanceNumber = k + 1
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-60.0, -80.0, z]
    ds.PixelSpacing = [0.75, 0.625]
    ds.SliceThickness = 2.5
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = int(np.issubdtype(dtype, np.signedinteger))
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.RescaleType = "HU"
    if syntax == ExplicitVRLittleEndian:
        ds.PixelData = stored.tobytes()
        ds["PixelData"].VR = "OB" if stored.dtype.itemsize == 1 else "OW"
    else:
        ds.PixelData = encapsulate([stream or ht_stream(stored, syntax)])
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def hounsfield(stored: np.ndarray, kind: str) -> np.ndarray:
    """The modality values of ``stored``: stored x RescaleSlope + RescaleIntercept."""
    _, _, slope, intercept, _ = KINDS[kind]
    return stored.astype(np.float64) * slope + intercept


# --------------------------------------------------------------------------------------------
# the codestreams are HT, and the check tells them from Part 1 streams
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS), ids=list(KINDS))
def test_encoded_streams_are_ht_and_reversible(kind):
    stored = ct_stored(kind)
    _, bits, _, _, _ = KINDS[kind]
    # the image uses its range: the top stored bit, and negative values when signed
    assert stored.min() < 0 if kind == "s16" else stored.max() == 2**bits - 1
    header = main_header(ht_stream(stored, HTJ2KLossless))
    assert header["part15"] and header["ht"] and header["reversible"]
    assert header["markers"][:2] == ["SIZ", "CAP"]
    assert header["size"] == stored.shape
    assert header["signed"] == (kind == "s16")
    # the pinned htj2k_encode has no bit-depth option: a 12-bit image is coded at 16 bits
    assert header["precision"] == stored.dtype.itemsize * 8


def test_rpcl_stream_meets_the_rpcl_syntax():
    """PS3.5 10.18: RPCL progression, a base resolution of at most 64 x 64, TLM present."""
    stored = ct_stored("s16")
    header = main_header(ht_stream(stored, HTJ2KLosslessRPCL))
    assert header["ht"] and header["progression"] == "RPCL"
    assert max(stored.shape) / 2 ** header["levels"] <= 64
    assert "TLM" in header["markers"]
    assert "TLM" not in main_header(ht_stream(stored, HTJ2KLossless))["markers"]


def test_header_check_tells_a_part1_stream_from_an_ht_one():
    ds = pydicom.dcmread(pydicom_file("MR_small_jp2klossless.dcm"))
    header = main_header(next(generate_frames(ds.PixelData, number_of_frames=1)))
    assert header["reversible"]
    assert not header["part15"] and not header["ht"]
    assert "CAP" not in header["markers"]


def test_tlm_changes_no_decoded_value():
    """OpenJPH's own decoder reads the stream with the added TLM marker to the same values."""
    stored = ct_stored("u16")
    assert_array_equal(imagecodecs.htj2k_decode(ht_stream(stored, HTJ2KLosslessRPCL)), stored)


# --------------------------------------------------------------------------------------------
# read_dicom: equal to the stored values after the rescale, and to GDCM
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("syntax", SYNTAXES, ids=SYNTAX_IDS)
@pytest.mark.parametrize("kind", list(KINDS), ids=list(KINDS))
def test_read_dicom_decodes_ht_streams_exactly(tmp_path, kind, syntax):
    stored = ct_stored(kind)
    path = ct_file(tmp_path / "ht.dcm", stored, kind, syntax)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == syntax
    img = read_dicom(path)
    assert img.metadata["transfer_syntax_uid"] == str(syntax)
    assert img.pixels.dtype == np.float32
    assert_array_equal(img.pixels, hounsfield(stored, kind).astype(np.float32))
    _, _, slope, intercept, _ = KINDS[kind]
    assert (img.metadata["rescale_slope"], img.metadata["rescale_intercept"]) == (slope, intercept)
    assert img.spacing == (0.75, 0.625)
    assert_array_equal(img.pixels.astype(np.float64), gdcm_pixels(path))


@pytest.mark.parametrize("kind", ["u12", "s16"], ids=["u12", "s16"])
def test_lossy_ht_stream_within_one_level_of_openjph(tmp_path, kind):
    """An irreversible (9/7) HT stream in the HTJ2K syntax: OpenJPEG (read_dicom) and OpenJPH
    (imagecodecs), two independent decoders, agree within one stored level; the image is
    really lossy and within 1 % RMS of the original's range. (u8 and u16 images, whose
    corners sit at the top of the range, are left out: OpenJPH's decoder wraps the values
    the wavelet overshoots there, OpenJPEG clips them.)"""
    stored = ct_stored(kind)
    stream = bytes(imagecodecs.htj2k_encode(stored, level=0.001, reversible=False))
    header = main_header(stream)
    assert header["ht"] and not header["reversible"]
    path = ct_file(tmp_path / "lossy.dcm", stored, kind, HTJ2K, stream=stream)
    got = read_dicom(path).pixels.astype(np.float64)
    slope = KINDS[kind][2]
    openjph = hounsfield(imagecodecs.htj2k_decode(stream), kind)
    assert np.abs(got - openjph).max() <= slope
    original = hounsfield(stored, kind)
    rms = np.sqrt(np.mean((got - original) ** 2))
    assert 0 < rms <= 0.01 * np.ptp(original)


# --------------------------------------------------------------------------------------------
# read_series: a small HTJ2K series reads like the same series uncompressed
# --------------------------------------------------------------------------------------------


def write_series(folder, kind, syntax, n=4):
    """n slices 2.5 mm apart, each a different CT-like image, written in ``syntax``."""
    folder.mkdir()
    series_uid = generate_uid(entropy_srcs=["m1vision-htj2k-series", kind, folder.name])
    slices = [ct_stored(kind, shape=(64, 48), seed=k) for k in range(n)]
    for k, stored in enumerate(slices):
        ct_file(folder / f"s{k}.dcm", stored, kind, syntax, z=2.5 * k, series_uid=series_uid, k=k)
    return np.stack(slices)


@pytest.mark.parametrize("series", [None, 0], ids=["one-series", "series-given"])
@pytest.mark.parametrize("syntax", SYNTAXES, ids=SYNTAX_IDS)
@pytest.mark.parametrize("kind", ["u12", "s16"], ids=["u12", "s16"])
def test_read_series_of_ht_slices_equals_the_uncompressed_series(tmp_path, kind, syntax, series):
    """series= given decodes the files after the series is picked (another code path)."""
    stored = write_series(tmp_path / "ht", kind, syntax)
    write_series(tmp_path / "plain", kind, ExplicitVRLittleEndian)
    vol = read_series(tmp_path / "ht", series=series)
    plain = read_series(tmp_path / "plain")
    assert vol.shape == (4, 64, 48)
    assert_array_equal(vol.pixels, hounsfield(stored, kind).astype(np.float32))
    assert_array_equal(vol.pixels, plain.pixels)
    assert vol.spacing == plain.spacing == (2.5, 0.75, 0.625)
    assert vol.metadata["affine"] == plain.metadata["affine"]
    assert vol.metadata["irregularities"] == []
