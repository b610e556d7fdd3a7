"""The MLflow pyfunc model of a final pneumobench model ("models from code").

MLflow stores this file with the model and runs it at ``mlflow.pyfunc.load_model``: it needs
torch, numpy, pandas, Pillow (and pydicom for DICOM), never pneumobench. Its artifacts:

- ``model``: the network as TorchScript (``torch.jit.load``: no Python pickle), images in [0, 1]
  ``(N, 1, S, S)`` -> logits;
- ``spec``: ``spec.json`` (image size, resize mode, class names, validation-chosen thresholds);
- ``pneumobench_pixels.py`` (``pneumobench/data/pixels.py`` shipped as code): pneumobench's own decoding, so images are decoded here exactly
  as in training.

Input: a DataFrame with a column ``image``: base64 text of the image file (JPEG, PNG or DICOM),
raw bytes, or a file path. Output: one row per image with ``p_<class>`` per class,
``pneumonia_score``, ``threshold``, ``prediction`` (the class at the validation-chosen operating
point) and ``error`` (why an image could not be read; its other cells are empty).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

NOT_AN_IMAGE = "not a decodable image (JPEG, PNG or DICOM)"


def _source(value: Any) -> io.BytesIO | str:
    """A decodable source from a cell: bytes, base64 text of a file's bytes, or a path on the
    machine serving the model; anything else is a ValueError saying what to send."""
    if isinstance(value, bytes | bytearray):
        return io.BytesIO(bytes(value))
    text = str(value)
    if len(text) <= 4096 and Path(text).is_file():
        return text
    try:
        return io.BytesIO(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ValueError(
            f"{shown!r} is neither base64-encoded image bytes nor a file on the machine serving "
            "the model: send each image's file bytes base64-encoded in the 'image' column "
            "(dataframe_split)"
        ) from None


class PneumobenchModel(mlflow.pyfunc.PythonModel):
    """Decode -> TorchScript network -> softmax -> decision at the validation-chosen threshold."""

    def load_context(self, context: Any) -> None:
        # pneumobench's decoding as it was at training time, shipped with the model as code
        import pneumobench_pixels  # type: ignore[import-not-found]
        import torch

        self.pixels = pneumobench_pixels
        self.net = torch.jit.load(context.artifacts["model"], map_location="cpu").eval()
        self.spec = json.loads(Path(context.artifacts["spec"]).read_text())

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        import torch

        spec = self.spec
        size, resize = int(spec["image_size"]), spec["resize"]
        column = model_input["image"] if "image" in model_input else model_input.iloc[:, 0]
        images, errors = [], []
        for value in column:
            try:
                source = _source(value)
            except ValueError as exc:
                images.append(None)
                errors.append(str(exc))
                continue
            try:
                images.append(self.pixels.decode_image(source, size, resize))
                errors.append("")
            except Exception as exc:  # an unreadable image is reported, the rest predicted
                images.append(None)
                errors.append(f"{NOT_AN_IMAGE}: {type(exc).__name__}: {exc}")
        names = spec["class_names"]
        probs = np.full((len(images), len(names)), np.nan)
        ok = [i for i, img in enumerate(images) if img is not None]
        if ok:
            batch = np.stack([images[i] for i in ok]).astype(np.float32)[:, None] / 255.0
            with torch.inference_mode():
                logits = self.net(torch.from_numpy(batch))
            probs[ok] = torch.softmax(logits.float(), 1).numpy()
        threshold = float(spec["thresholds"][spec["decision_point"]])
        score = 1.0 - probs[:, 0]
        if len(names) == 2:
            decided = (score >= threshold).astype(int)
        else:
            decided = np.where(score >= threshold, 1 + np.nan_to_num(probs[:, 1:]).argmax(1), 0)
        out = pd.DataFrame({f"p_{c}": probs[:, k] for k, c in enumerate(names)})
        out["pneumonia_score"] = score
        out["threshold"] = threshold
        out["prediction"] = [
            names[d] if not e else "" for d, e in zip(decided, errors, strict=True)
        ]
        out["error"] = errors
        return out


mlflow.models.set_model(PneumobenchModel())
