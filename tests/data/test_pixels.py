"""Tests of pneumobench/data/pixels.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from pneumobench.data.pixels import decode_image, dicom_to_grey8, header, is_dicom


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
) -> Path:
    """A real single-frame DICOM file (explicit VR little endian), as a scanner would write it."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = "test"
    ds.Modality = "CR"
    ds.set_pixel_data(pixels, photometric, bits_stored or pixels.dtype.itemsize * 8)
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    ds.save_as(path, enforce_file_format=True)
    return path


def _gradient16() -> np.ndarray:
    return (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)


def test_8_bit_monochrome2_is_read_as_it_is(tmp_path: Path) -> None:
    pixels = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    path = write_dicom(tmp_path / "a.dcm", pixels)
    assert pydicom.dcmread(path).BitsStored == 8
    assert np.array_equal(dicom_to_grey8(path), pixels)


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    pixels = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    path = write_dicom(tmp_path / "inv.dcm", pixels, photometric="MONOCHROME1")
    assert np.array_equal(dicom_to_grey8(path), 255 - pixels)


def test_12_bit_in_16_is_scaled_by_the_stored_depth(tmp_path: Path) -> None:
    pixels = np.array([[0, 1024], [2048, 4095]], dtype=np.uint16)
    path = write_dicom(tmp_path / "cr.dcm", pixels, bits_stored=12)
    expected = np.round(pixels * (255.0 / 4095)).astype(np.uint8)  # 0, 64, 128, 255
    assert np.array_equal(dicom_to_grey8(path), expected)


def test_16_bit_window_is_applied(tmp_path: Path) -> None:
    """Window center 1000, width 401 (DICOM linear): values below 800 are black, above 1200
    white, 1000 is mid-grey; the 16-bit output range is then scaled to 8 bit."""
    pixels = np.array([[0, 700, 1000], [1100, 1300, 65535]], dtype=np.uint16)
    path = write_dicom(tmp_path / "w.dcm", pixels, bits_stored=16, window=(1000, 401))
    c, w = 1000 - 0.5, 401 - 1.0
    lin = ((pixels.astype(float) - c) / w + 0.5) * 65535
    expected = np.round(np.clip(lin, 0, 65535) * 255 / 65535).astype(np.uint8)
    got = dicom_to_grey8(path)
    assert np.array_equal(got, expected)
    assert got[0, 0] == 0 and got[0, 1] == 0 and got[1, 2] == 255 and 126 <= got[0, 2] <= 129


def test_monochrome1_16_bit_with_window_and_rescale(tmp_path: Path) -> None:
    pixels = np.array([[100, 200], [300, 400]], dtype=np.uint16)
    path = write_dicom(
        tmp_path / "m1.dcm",
        pixels,
        photometric="MONOCHROME1",
        bits_stored=16,
        window=(500, 400),
        rescale=(2.0, -100.0),
    )
    values = pixels * 2.0 - 100.0  # modality LUT: 100, 300, 500, 700
    low, high = -100.0, 65535 * 2.0 - 100.0  # the stored range through the rescale
    c, w = 500 - 0.5, 400 - 1.0
    lin = ((values - c) / w + 0.5) * (high - low) + low
    grey = np.clip(lin, low, high) - low
    expected = np.round(255 - grey * 255 / (high - low)).astype(np.uint8)
    assert np.array_equal(dicom_to_grey8(path), expected)


def test_decode_image_reads_dicom_like_any_image(tmp_path: Path) -> None:
    pixels = (np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) % 4096).astype(np.uint16)
    path = write_dicom(tmp_path / "no_suffix", pixels, bits_stored=12)
    assert is_dicom(path)
    out = decode_image(path, 32, "pad")
    assert out.shape == (32, 32) and out.dtype == np.uint8
    assert out[:3].max() == 0 and out[4:28].max() > 0  # the 64x48 picture between black bands
    assert header(path) == ("64x48", "DICOM MONOCHROME2 12-bit")


def test_folder_source_trains_on_dicom(tmp_path: Path) -> None:
    """A Kermany-layout folder of .dcm files is read by the folder source (and by data check)."""
    from pneumobench.data.check import check_folder
    from pneumobench.data.sources.folder import scan_folder

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls, name in (
            ("NORMAL", "IM-{:04d}-0001.dcm"),
            ("PNEUMONIA", "person{}_bacteria_1.dcm"),
        ):
            folder = tmp_path / "dcm" / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                pid = i + (100 if split == "test" else 0)
                pixels = rng.integers(0, 4096, (40, 48)).astype(np.uint16)
                write_dicom(
                    folder / name.format(pid),
                    pixels,
                    bits_stored=12,
                    photometric="MONOCHROME1" if i % 2 else "MONOCHROME2",
                )
    records = scan_folder(tmp_path / "dcm", "binary")
    assert len(records) == 12
    check = check_folder(tmp_path / "dcm")
    assert not check.unreadable
    assert set(check.splits["train"].modes) == {
        "DICOM MONOCHROME1 12-bit",
        "DICOM MONOCHROME2 12-bit",
    }


def test_broken_dicom_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")
    with pytest.raises(Exception):  # noqa: B017 - decode_many turns any of them into a reason
        dicom_to_grey8(path)


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
def test_16_bit_grey_images_are_scaled_by_bit_depth_not_clipped(
    tmp_path: Path, suffix: str
) -> None:
    pixels = _gradient16()
    path = tmp_path / f"x{suffix}"
    Image.fromarray(pixels).save(path)
    out = decode_image(path, 64)
    expected = np.round(pixels / 65535 * 255)
    assert np.abs(out.astype(float) - expected).max() <= 1
    assert out.min() == 0 and out.max() == 255 and 120 < out.mean() < 135


def test_palette_and_grey_alpha_images_keep_their_grey(tmp_path: Path) -> None:
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    Image.fromarray(grey).convert("P").save(tmp_path / "p.png")
    Image.fromarray(grey).convert("LA").save(tmp_path / "la.png")
    for name in ("p.png", "la.png"):
        assert np.abs(decode_image(tmp_path / name, 64).astype(int) - grey).max() <= 1


def test_resize_modes_squash_crop_or_pad_a_wide_image(tmp_path: Path) -> None:
    wide = np.zeros((40, 80), dtype=np.uint8)
    wide[:, :20] = 255  # a white left quarter
    path = tmp_path / "wide.png"
    Image.fromarray(wide).save(path)
    squash = decode_image(path, 40, "squash")
    crop = decode_image(path, 40, "center_crop")
    pad = decode_image(path, 40, "pad")
    assert squash[:, :8].mean() > 250 and squash[:, 12:].mean() < 5  # the quarter is kept, thin
    assert crop.max() == 0  # the central square holds no white
    assert pad[:8].max() == 0 and pad[12:28, :8].mean() > 250  # black borders, white kept


def test_a_jpeg_stored_rotated_with_exif_orientation_is_decoded_upright(tmp_path: Path) -> None:
    """Orientation=6: the pixels are stored turned 90 degrees, viewers show them upright."""
    upright = np.zeros((40, 64), dtype=np.uint8)
    upright[:, :16] = 255  # a bright band on the left of the upright picture
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # as a phone saves it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 clockwise to view
    path = tmp_path / "rotated.jpeg"
    stored.save(path, quality=95, exif=exif)
    out = decode_image(path, 64, "squash")
    assert out[:, :16].mean() > 200 and out[:, 40:].mean() < 50, "decoded sideways"
    plain = tmp_path / "plain.jpeg"
    Image.fromarray(upright).save(plain, quality=95)
    assert np.abs(out.astype(int) - decode_image(plain, 64, "squash").astype(int)).max() <= 16


@pytest.mark.parametrize("bits", [12, 16])
def test_rgb_dicom_above_8_bits_is_scaled_by_its_bit_depth(tmp_path: Path, bits: int) -> None:
    top = 2**bits - 1
    rgb = np.zeros((8, 8, 3), dtype=np.uint16)
    rgb[:4] = top  # upper half white, lower half black
    rgb[4:, :, 0] = top // 2  # lower half: half-bright red
    path = write_dicom(tmp_path / f"rgb{bits}.dcm", rgb, photometric="RGB", bits_stored=bits)
    grey = dicom_to_grey8(path)
    assert grey[:4].min() >= 250  # white stays white (it wrapped to black before)
    expected = round(0.299 * 127.5)  # Pillow's grey of (128, 0, 0)
    assert abs(int(grey[4:].mean()) - expected) <= 2


def test_a_dicom_without_pixel_data_and_a_non_image_jpeg_are_named_plainly(
    tmp_path: Path,
) -> None:
    path = write_dicom(tmp_path / "a.dcm", np.zeros((4, 4), np.uint8))
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(ValueError, match="holds no image") as info:
        dicom_to_grey8(path)
    assert "decoder" not in str(info.value)
    fake = tmp_path / "notes.jpeg"
    fake.write_text("not a picture")
    with pytest.raises(ValueError, match="not an image file") as info:
        decode_image(fake, 32)
    assert "BytesIO" not in str(info.value) and "0x" not in str(info.value)


def test_a_large_original_decodes_without_pillows_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over Pillow's decompression-bomb warning (scaled down here), under its refusal."""
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600: warns, < 2x refuses
    path = tmp_path / "big.png"
    Image.fromarray(np.full((40, 40), 120, np.uint8)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert decode_image(path, 16).mean() == pytest.approx(120, abs=1)
