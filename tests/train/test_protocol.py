"""Tests of pneumobench/train/protocol.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pneumobench.config import parse_config
from pneumobench.registry import create_model
from pneumobench.train.protocol import DivergedError, fit
from tests.conftest import tiny_config
from tests.train.conftest import fit_tiny


def test_fit_logs_every_epoch_and_restores_the_best_checkpoint(tiny) -> None:
    config, data = tiny
    model = create_model("simple_cnn", 2, dropout=0.1, image_size=32)
    result = fit_tiny(config, data, model, max_epochs=4, patience=4, lr=3e-3)
    assert len(result.history) == 4
    assert result.best_score == max(h["val_f1"] for h in result.history)
    assert result.best_epoch == 1 + [h["val_f1"] for h in result.history].index(result.best_score)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, result.state_dict[key])
    assert {"train_loss", "val_loss", "val_auc", "lr", "epoch_seconds", "images_per_second"} <= set(
        result.history[0]
    )


def test_early_stopping_after_patience(tiny) -> None:
    config, data = tiny
    model = create_model("simple_cnn", 2, image_size=32)
    result = fit_tiny(
        config, data, model, max_epochs=30, patience=1, lr=1e-7
    )  # cannot improve for long
    assert len(result.history) < 30 and result.stopped_early


def test_pretrained_backbone_is_frozen_then_trained(tiny) -> None:
    config, data = tiny
    model = create_model("simple_cnn", 2, image_size=32)
    model.pretrained_source = "test"  # treated as pretrained by the protocol
    before = [p.detach().clone() for p in model.backbone_parameters()]
    bn = model.backbone[1]
    running = bn.running_mean.clone()
    head_before = [p.detach().clone() for p in model.head_parameters()]
    result = fit_tiny(config, data, model, max_epochs=1, freeze_epochs=1, patience=1)
    assert result.history[0]["backbone_frozen"] == 1.0
    for b, p in zip(before, model.backbone_parameters(), strict=True):
        torch.testing.assert_close(b, p)
    torch.testing.assert_close(bn.running_mean, running)  # BatchNorm statistics frozen too
    assert any(
        not torch.equal(b, p) for b, p in zip(head_before, model.head_parameters(), strict=True)
    )

    result = fit_tiny(config, data, model, max_epochs=2, freeze_epochs=1, patience=2)
    assert [h["backbone_frozen"] for h in result.history] == [1.0, 0.0]
    assert result.history[1]["lr"] < result.history[0]["lr"]  # cosine schedule


def test_nan_loss_is_reported_as_divergence(tiny) -> None:
    config, data = tiny
    model = create_model("simple_cnn", 2, image_size=32)
    with torch.no_grad():
        model.head[1].weight.fill_(float("nan"))
    with pytest.raises(DivergedError, match="nan"):
        fit_tiny(config, data, model, max_epochs=1)


def test_tta_is_the_mean_of_the_image_and_its_mirror() -> None:
    from pneumobench.train.protocol import predict

    class Feeder:
        def __init__(self, x: torch.Tensor) -> None:
            self.x = x

        def batches(self, batch_size: int):
            yield self.x, torch.zeros(len(self.x), dtype=torch.long)

        def __len__(self) -> int:
            return len(self.x)

    torch.manual_seed(0)
    model = create_model("simple_cnn", 2, pretrained=False, image_size=32).eval()
    x = torch.rand(5, 1, 32, 32)
    plain, _ = predict(model, Feeder(x), 8, torch.device("cpu"))
    mirror, _ = predict(model, Feeder(torch.flip(x, dims=[3])), 8, torch.device("cpu"))
    tta, _ = predict(model, Feeder(x), 8, torch.device("cpu"), tta="hflip")
    assert np.allclose(tta, (plain + mirror) / 2, atol=1e-6)


def test_ema_weights_are_what_is_kept_when_ema_is_on(
    fake_kermany: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With EMA on, the weights fit() validates and returns are the EMA's, not the raw ones."""
    import timm.utils

    from pneumobench.config import AugmentConfig, ProtocolConfig
    from pneumobench.data.prepare import prepare_data

    seen = []

    class Recording(timm.utils.ModelEmaV3):
        def update(self, model, step=None):
            super().update(model, step)
            self.raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
            seen.append(self)

    monkeypatch.setattr(timm.utils, "ModelEmaV3", Recording)
    data = prepare_data(parse_config(tiny_config(fake_kermany)))
    torch.manual_seed(0)
    model = create_model("simple_cnn", 2, pretrained=False, image_size=32)
    protocol = ProtocolConfig(max_epochs=1, patience=1, batch_size=8, lr=1e-2, ema_decay=0.9)
    fit(
        model,
        data,
        protocol,
        augment=AugmentConfig(enabled=False),
        objective="val_loss",
        direction="minimize",
        device=torch.device("cpu"),
        seed=0,
    )
    ema = seen[-1]
    kept, averaged = model.state_dict(), ema.module.state_dict()
    assert all(torch.equal(kept[k], averaged[k]) for k in kept)
    key = "backbone.0.weight"
    assert not torch.allclose(kept[key], ema.raw[key])  # the raw weights were not kept
