"""A final model as a deployable file: ONNX (dynamic batch axis) or TorchScript, with a parity check.

Both take images in [0, 1], ``(N, 1, S, S)`` float32, and return class logits (softmax them for
probabilities); decoding and resizing are ``pneumobench.data.pixels.decode_image`` with the
spec's ``image_size`` and ``resize``. The parity check runs the exported file (onnxruntime, or
``torch.jit.load``) and the PyTorch model on the same real test images and compares class
probabilities: the largest absolute difference must stay below ``PARITY_TOLERANCE``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from pneumobench.errors import ModelError
from pneumobench.serving.bundle import ModelSpec
from pneumobench.serving.formats import FORMATS, PARITY_TOLERANCE

__all__ = ["FORMATS", "PARITY_TOLERANCE", "export"]
INPUT_NAME, OUTPUT_NAME = "images", "logits"
TRACE_TOLERANCE = 1e-4  # largest absolute logit difference of a trace from its network


def to_batch(images: np.ndarray) -> torch.Tensor:
    """(N, S, S) uint8 -> (N, 1, S, S) float32 in [0, 1], as the model was trained."""
    return torch.from_numpy(np.ascontiguousarray(images, np.float32)[:, None] / 255.0)


def torchscript(model: torch.nn.Module, example: torch.Tensor, out: Path) -> Path:
    """Trace ``model`` on ``example`` and save it (``torch.jit.load`` reads it, no pickle).

    The traced network must give the eager one's output on ``example`` (within
    ``TRACE_TOLERANCE``), else ModelError. This replaces ``torch.jit.trace``'s own check, which
    traces the model a second time to compare graphs (about half the cost of an export)."""
    model = model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        traced = torch.jit.trace(model, example, check_trace=False)
        with torch.no_grad():
            gap = float((traced(example) - model(example)).abs().max())
        if not gap <= TRACE_TOLERANCE:
            raise ModelError(
                f"the TorchScript trace of {type(model).__name__} differs from the network by "
                f"{gap:.2e} (> {TRACE_TOLERANCE:g}): its forward depends on something the trace "
                "cannot follow; export it as ONNX instead"
            )
        traced.save(str(out))
    return out


def onnx(model: torch.nn.Module, example: torch.Tensor, out: Path) -> Path:
    """Export to ONNX with a dynamic batch axis (the TorchScript-based exporter: no onnxscript)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (example,),
            str(out),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            dynamo=False,
            external_data=False,
        )
    return out


def preprocessing_metadata(spec: ModelSpec) -> dict[str, str]:
    """What an ONNX runtime user must do before and after the graph, as its metadata."""
    return {
        "pneumobench.input": f"'{INPUT_NAME}': (N, {spec.in_chans}, {spec.image_size}, "
        f"{spec.image_size}) float32, grey pixels / 255 (0..1), NCHW",
        "pneumobench.preprocessing": f"decode to 8-bit grey (DICOM: windowed and inverted as "
        f"pneumobench.data.pixels does), make square by '{spec.resize}' (pad: black borders; "
        f"squash: stretch; center_crop: the central square), resize to {spec.image_size} px "
        "(bilinear, antialiased)",
        "pneumobench.output": f"'{OUTPUT_NAME}': class logits; softmax gives P({', '.join(spec.class_names)})",
        "pneumobench.decision": f"pneumonia when 1 - P({spec.class_names[0]}) >= "
        f"{spec.threshold:.6f} (the '{spec.decision_point}' operating point, chosen on validation)",
        "pneumobench.spec": spec.to_json(),
    }


def _write_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx as onnx_lib

    graph = onnx_lib.load(str(path))
    for key, value in metadata.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx_lib.save(graph, str(path))


def export(
    model: torch.nn.Module,
    images: np.ndarray,
    fmt: str,
    out: Path,
    spec: ModelSpec | None = None,
) -> float:
    """Write ``model`` as ``fmt`` to ``out`` and check it on ``images``; the largest absolute
    probability difference. A difference at or above the tolerance is a ModelError (and the file
    is removed). With ``spec``, an ONNX file carries its preprocessing, output and decision in
    its metadata (``preprocessing_metadata``)."""
    if fmt not in FORMATS:
        raise ModelError(f"--format {fmt}: choose {' or '.join(FORMATS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    batch = to_batch(images)
    model = model.cpu().eval()
    try:
        (onnx if fmt == "onnx" else torchscript)(model, batch[:1], out)
        if fmt == "onnx" and spec is not None:
            _write_metadata(out, preprocessing_metadata(spec))
    except Exception as exc:  # an operator the exporter does not know, a dynamic branch, ...
        out.unlink(missing_ok=True)
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        other = "torchscript" if fmt == "onnx" else "onnx"
        raise ModelError(
            f"this model cannot be exported as {fmt}: {reason}. Try --format {other}, or use "
            "the registered pyfunc model (mlflow models serve)"
        ) from None
    try:
        difference = parity(model, out, fmt, batch)
    except Exception as exc:  # the runtime refuses the exported graph
        out.unlink(missing_ok=True)
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"the {fmt} export does not run for the parity check: {reason}; not kept"
        ) from None
    if not difference < PARITY_TOLERANCE:
        out.unlink(missing_ok=True)
        raise ModelError(
            f"{fmt} export of the model differs from PyTorch by {difference:.2e} in class "
            f"probability on {len(batch)} test images (tolerance {PARITY_TOLERANCE:g}); not kept"
        )
    return difference


def parity(model: torch.nn.Module, path: Path, fmt: str, batch: torch.Tensor) -> float:
    """Largest absolute difference of class probabilities, exported file vs PyTorch (the whole
    batch at once: the dynamic batch axis is exercised)."""
    with torch.inference_mode():
        expected = torch.softmax(model(batch), 1).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        logits = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})[0]
        got = torch.softmax(torch.from_numpy(logits), 1).numpy()
    else:
        loaded = torch.jit.load(str(path), map_location="cpu")
        with torch.inference_mode():
            got = torch.softmax(loaded(batch), 1).numpy()
    return float(np.abs(got - expected).max())
