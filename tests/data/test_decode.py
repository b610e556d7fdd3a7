"""Tests of pneumobench/data/decode.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pneumobench.config import parse_config
from pneumobench.data import decode as decode_module
from pneumobench.data import prepare_data
from pneumobench.data.cache import clear_memory_cache
from pneumobench.errors import DataError
from tests.conftest import tiny_config


def test_each_image_is_decoded_once_per_dataset_and_size(
    fake_kermany: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = decode_module.decode_image

    def counting(path: Path, size: int, resize: str = "squash") -> np.ndarray:
        calls.append(path)
        return real(path, size, resize)

    monkeypatch.setattr(decode_module, "decode_image", counting)
    config = parse_config(tiny_config(fake_kermany))
    first = prepare_data(config)
    n_images = len(first.train) + len(first.val) + len(first.test)
    assert len(calls) == n_images and len(set(calls)) == n_images
    for _ in range(3):  # more trials and models in this process
        prepare_data(config)
    clear_memory_cache()  # a new process: the on-disk cache answers
    again = prepare_data(config)
    assert len(calls) == n_images
    np.testing.assert_array_equal(again.train.images, first.train.images)
    prepare_data(
        parse_config(
            tiny_config(
                fake_kermany, data={**config.data.model_dump(mode="json"), "image_size": 48}
            )
        )
    )
    assert len(calls) == 2 * n_images  # another size is another decode


def test_truncated_image_is_named(fake_kermany: Path) -> None:
    victim = next((fake_kermany / "test" / "NORMAL").glob("*.jpeg"))
    victim.write_bytes(victim.read_bytes()[:40])
    with pytest.raises(DataError, match=victim.name):
        prepare_data(parse_config(tiny_config(fake_kermany)))
