"""Tests of pneumobench/serving/bundle.py."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch


def test_weights_are_loaded_without_unpickling(tmp_path: Path) -> None:
    """A weights file holding pickled code is refused, not executed."""
    from pneumobench.errors import ModelError
    from pneumobench.registry import create_model
    from pneumobench.serving.bundle import ModelSpec, load_bundle, write_bundle

    model = create_model("simple_cnn", 2, pretrained=False, image_size=32)
    spec = ModelSpec("m", "simple_cnn", ["normal", "pneumonia"], 32, "pad", 0.0, {"spec": 0.5})
    folder = write_bundle(tmp_path / "b", model, spec, np.zeros((2, 32, 32), np.uint8))
    rebuilt, _ = load_bundle(folder)
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(rebuilt(x), model.eval()(x))

    class Payload:
        def __reduce__(self):  # what a malicious pickle does on load
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"x": Payload()}, folder / "weights.pt")
    with pytest.raises(ModelError, match="not a plain state dict") as info:
        load_bundle(folder)
    assert "weights_only" not in str(info.value)  # torch's hint to unpickle is never repeated
    assert not (tmp_path / "pwned").exists()
