"""From one image file (JPEG, PNG, DICOM) to the square grey uint8 array a model sees.

Standalone by contract: this module imports only NumPy, Pillow and (for DICOM) pydicom, never
pneumobench. It is the one implementation of preprocessing used by training, ``predict``, and the
MLflow pyfunc model, which ships this very file beside its weights so that a machine without
pneumobench decodes images exactly as training did.

DICOM (``.dcm``, or any file with the ``DICM`` marker): the modality LUT (rescale slope and
intercept), then the VOI LUT or window of the file where it has one, then scaling to 8 bit by the
stored bit depth (12-bit 0..4095 -> 0..255; a window maps its own range), and MONOCHROME1 (white
is low) inverted so that bone is bright as in every other image.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

RESIZE_MODES = ("squash", "center_crop", "pad")
# Raise when decoding changes its output for some file (caches built before are then rebuilt):
# 2 applies the EXIF orientation of rotated JPEGs.
DECODER_VERSION = 2


def decode_image(source: Path | str | io.BytesIO, size: int, resize: str = "pad") -> np.ndarray:
    """Grey, square ``size`` px. JPEG draft mode lets libjpeg shrink big originals while decoding.

    ``resize``: how a non-square image becomes square. ``squash`` stretches it (the aspect ratio
    is lost: a 1.4:1 chest becomes narrow); ``center_crop`` keeps the central square (the sides
    of the chest may be cut); ``pad`` adds black borders to the short side (all of the image is
    kept, smaller).

    16-bit and 32-bit grey images (PNG, TIFF) are scaled by their bit depth to 8 bit, not clipped
    (Pillow's ``convert("L")`` clips them to white); palette and alpha images keep their grey.
    A file stored rotated with an EXIF orientation (as phones and some viewers write them) is
    turned upright first, as every viewer shows it.
    """
    if is_dicom(source):
        grey = Image.fromarray(dicom_to_grey8(source), mode="L")
        return _finish(grey, size, resize)
    with warnings.catch_warnings():
        # a large original (over Pillow's 89-megapixel warning, under its refusal at twice
        # that) is decoded, not warned about: the refusal of a real bomb stays an error
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(source)
        except UnidentifiedImageError:
            raise ValueError("not an image file (Pillow cannot identify its format)") from None
        with img:
            if img.format == "JPEG":
                img.draft("L", (size, size))
            upright = ImageOps.exif_transpose(img)
            return _finish(to_grey8(upright), size, resize)


def _finish(grey: Image.Image, size: int, resize: str) -> np.ndarray:
    grey = _square(grey, resize)
    if grey.size != (size, size):
        grey = grey.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(grey, dtype=np.uint8)


def _square(img: Image.Image, resize: str) -> Image.Image:
    width, height = img.size
    if resize == "squash" or width == height:
        return img
    side = min(width, height) if resize == "center_crop" else max(width, height)
    if resize == "center_crop":
        left, top = (width - side) // 2, (height - side) // 2
        return img.crop((left, top, left + side, top + side))
    canvas = Image.new("L", (side, side), 0)
    canvas.paste(img, ((side - width) // 2, (side - height) // 2))
    return canvas


def to_grey8(img: Image.Image) -> Image.Image:
    """An 8-bit grey image of any mode, scaled by the mode's bit depth."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(img, dtype=np.float64)
        if img.mode == "F" and pixels.size and np.nanmax(pixels) <= 1.0:
            full_scale = 1.0  # floating-point images in [0, 1]
        elif img.mode in ("I", "F") and pixels.size and np.nanmax(pixels) > 65535:
            full_scale = 2.0**32 - 1
        else:
            full_scale = 65535.0  # 16-bit grey (Pillow opens 16-bit PNGs as I;16 or I)
        scaled = np.clip(np.nan_to_num(pixels) * (255.0 / full_scale), 0, 255)
        return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")
    return img.convert("L")


# --- DICOM -----------------------------------------------------------------------------------


def is_dicom(source: Path | str | io.BytesIO) -> bool:
    """A ``.dcm`` name, or the ``DICM`` marker at byte 128 (files without the suffix)."""
    if isinstance(source, str | Path):
        if str(source).lower().endswith((".dcm", ".dicom")):
            return True
        with open(source, "rb") as handle:
            return _has_marker(handle.read(132))
    position = source.tell()
    head = source.read(132)
    source.seek(position)
    return _has_marker(head)


def _has_marker(head: bytes) -> bool:
    return len(head) >= 132 and head[128:132] == b"DICM"


def dicom_to_grey8(source: Path | str | io.BytesIO) -> np.ndarray:
    """The (H, W) uint8 picture of a single-frame grey DICOM file (see the module docstring)."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(source)
    if "PixelData" not in ds:
        raise ValueError(
            "the DICOM file holds no image (no pixel data: a report or a series index?)"
        )
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise ValueError(f"a multi-frame DICOM ({ds.NumberOfFrames} frames); export one frame")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    try:
        stored = ds.pixel_array
    except Exception as exc:  # compressed transfer syntax without its decoder, no pixel data
        raise ValueError(
            f"cannot read the DICOM pixel data ({str(exc).splitlines()[0]}); for compressed "
            "files install a decoder: pip install pylibjpeg pylibjpeg-libjpeg"
        ) from None
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        rgb = np.asarray(stored)
        if rgb.ndim == 3 and rgb.shape[-1] == 3:  # colour secondary captures: their grey
            return np.asarray(Image.fromarray(_rgb8(rgb, ds), "RGB").convert("L"))
        raise ValueError(f"DICOM photometric interpretation {photometric} is not supported")
    values = apply_modality_lut(stored, ds).astype(np.float64)
    low, high = _stored_range(ds)  # a window maps onto this same range (pydicom, PS3.3 C.11.2)
    if "VOILUTSequence" in ds:
        values = apply_voi_lut(values, ds, index=0).astype(np.float64)
        low, high = 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        values = apply_voi_lut(values, ds, index=0).astype(np.float64)
    span = max(high - low, 1e-12)
    grey = np.clip((values - low) * (255.0 / span), 0, 255)
    if photometric == "MONOCHROME1":
        grey = 255.0 - grey
    return np.round(grey).astype(np.uint8)


def _rgb8(rgb: np.ndarray, ds: object) -> np.ndarray:
    """An RGB DICOM's samples as 8 bit, scaled by the stored bit depth (12 and 16 bit too)."""
    bits = int(getattr(ds, "BitsStored", 8) or 8)
    if bits <= 8 and rgb.dtype == np.uint8:
        return rgb
    scaled = np.clip(rgb.astype(np.float64) * (255.0 / (2**bits - 1)), 0, 255)
    return np.round(scaled).astype(np.uint8)


def _stored_range(ds: object) -> tuple[float, float]:
    """The value range the stored bit depth allows, through the modality LUT's rescale."""
    bits = int(getattr(ds, "BitsStored", 8) or 8)
    signed = int(getattr(ds, "PixelRepresentation", 0) or 0) == 1
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    ends = sorted((low * slope + intercept, high * slope + intercept))
    return ends[0], ends[1]


def header(path: Path) -> tuple[str, str]:
    """("WxH", mode) of an image file from its header; DICOM modes read "DICOM MONOCHROME1
    12-bit" and the like."""
    if is_dicom(path):
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        mode = f"DICOM {ds.get('PhotometricInterpretation', '?')} {ds.get('BitsStored', '?')}-bit"
        return f"{ds.Columns}x{ds.Rows}", mode
    with Image.open(path) as img:
        return f"{img.size[0]}x{img.size[1]}", img.mode
