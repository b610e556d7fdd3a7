"""Tests of pneumobench/registry/table.py."""

from __future__ import annotations

import torch

from pneumobench.registry import create_model, get_architecture, list_models, register_model, table
from pneumobench.registry.table import Backbone


def test_register_model_decorator_adds_an_entry() -> None:
    @register_model(family="test")
    def _tiny_test_net(pretrained: bool | str, in_chans: int, image_size: int) -> Backbone:
        """A test network."""
        return Backbone(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4)))

    try:
        assert "_tiny_test_net" in list_models("_tiny*")
        assert get_architecture("_tiny_test_net").description == "A test network."
        model = create_model("_tiny_test_net", 3, image_size=8)
        assert model(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    finally:
        table.unregister({"_tiny_test_net"})
    assert "_tiny_test_net" not in table.registered_names()
