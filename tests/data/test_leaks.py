"""Tests of pneumobench/data/leaks.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pneumobench.data.leaks import area_resize


@pytest.mark.parametrize("shape", [(3, 64, 64), (2, 70, 90), (2, 28, 28), (1, 33, 47)])
def test_area_resize_is_torchs_area_interpolation(shape: tuple[int, int, int]) -> None:
    images = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    reference = F.interpolate(
        torch.from_numpy(images.astype(np.float32)).unsqueeze(1), size=(32, 32), mode="area"
    ).squeeze(1)
    np.testing.assert_allclose(area_resize(images, 32), reference.numpy(), atol=1e-4)
