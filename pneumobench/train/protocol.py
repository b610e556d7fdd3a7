"""The one transfer-learning protocol every candidate goes through.

New head; pretrained backbone frozen for ``freeze_epochs`` (its BatchNorm statistics too), then
everything trained with the backbone at ``lr * backbone_lr_mult``; class-weighted cross-entropy;
cosine schedule (after ``warmup_epochs`` of linear warmup); early stopping on the validation
objective with the best weights restored. Models trained from scratch have nothing to protect:
they train all layers at ``lr`` from epoch 1.

Options of the same protocol (config keys, searchable): ``ema_decay`` keeps an exponential moving
average of the weights (timm's ``ModelEmaV3``) which is then what is validated, kept and tested;
``layer_decay`` lowers the LR of a pretrained timm backbone's early layers (timm's
``param_groups_layer_decay``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from pneumobench import interrupts, profile
from pneumobench.config import AugmentConfig, ProtocolConfig
from pneumobench.data import PreparedData
from pneumobench.data.batches import BatchFeeder
from pneumobench.evaluate.metrics import validation_metrics
from pneumobench.train.device import (
    autocast,
    autocast_dtype,
    configure_backends,
    to_channels_last,
)

EpochCallback = Callable[[int, dict[str, float]], None]
BatchCallback = Callable[[int, int], None]  # (images done, images in the epoch)


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite: these hyperparameters do not train."""


@dataclass
class FitResult:
    """The restored best epoch of one training run, with its weights (on the CPU)."""

    best_epoch: int
    best_score: float
    history: list[dict[str, float]] = field(default_factory=list)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    stopped_early: bool = False


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def is_better(score: float, best: float | None, direction: str) -> bool:
    """Whether ``score`` improves on ``best`` in ``direction`` ("maximize" | "minimize"); NaN never does."""
    if math.isnan(score):
        return False
    if best is None or math.isnan(best):
        return True
    return score < best if direction == "minimize" else score > best


def fit(
    model: nn.Module,
    data: PreparedData,
    protocol: ProtocolConfig,
    *,
    augment: AugmentConfig,
    objective: str,
    direction: str,
    device: torch.device,
    seed: int,
    on_epoch: EpochCallback | None = None,
    on_batch: BatchCallback | None = None,
) -> FitResult:
    """Train ``model`` on ``data.train`` by the protocol, early-stopping on ``objective`` measured
    on ``data.val``; the best epoch's weights are restored into ``model`` and returned.

    ``on_epoch(epoch, metrics)`` sees every epoch's metrics and may raise to stop (pruning);
    ``on_batch(images_done, images_total)`` follows the running epoch (progress).
    Raises :class:`DivergedError` when the training loss stops being finite. Its time is the
    run profile's ``training`` (what ``on_epoch`` does is subtracted where it names a stage).
    """
    with profile.stage(profile.TRAINING):
        return _fit(
            model, data, protocol, augment, objective, direction, device, seed, on_epoch, on_batch
        )


def _fit(
    model: nn.Module,
    data: PreparedData,
    protocol: ProtocolConfig,
    augment: AugmentConfig,
    objective: str,
    direction: str,
    device: torch.device,
    seed: int,
    on_epoch: EpochCallback | None,
    on_batch: BatchCallback | None,
) -> FitResult:
    t = _Training.start(model, data, protocol, augment, device, seed)
    best: FitResult | None = None
    history: list[dict[str, float]] = []
    stale = 0
    for epoch in range(1, protocol.max_epochs + 1):
        metrics = _train_and_validate(model, t, data, protocol, device, epoch, on_batch)
        history.append({"epoch": epoch, **metrics})
        if best is None or is_better(metrics[objective], best.best_score, direction):
            kept = t.ema.module if t.ema is not None else model  # what was validated
            state = {k: v.detach().to("cpu", copy=True) for k, v in kept.state_dict().items()}
            best, stale = FitResult(epoch, metrics[objective], state_dict=state), 0
        else:
            stale += 1
        if on_epoch is not None:
            on_epoch(epoch, metrics)  # may raise optuna.TrialPruned
        if stale >= protocol.patience:
            best.stopped_early = True
            break
    assert best is not None
    best.history = history
    model.load_state_dict(best.state_dict)
    return best


@dataclass
class _Training:
    """Everything one ``fit`` sets up before its first epoch."""

    train: BatchFeeder
    val: BatchFeeder
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    freeze_epochs: int  # 0 for a model trained from scratch: nothing to protect
    ema: Any = None  # timm ModelEmaV3 when protocol.ema_decay > 0

    @classmethod
    def start(
        cls,
        model: nn.Module,
        data: PreparedData,
        protocol: ProtocolConfig,
        augment: AugmentConfig,
        device: torch.device,
        seed: int,
    ) -> _Training:
        seed_everything(seed)
        configure_backends(device)
        generator = torch.Generator().manual_seed(seed)
        model.to(device)
        model.to(memory_format=torch.channels_last)  # see to_channels_last
        pretrained = bool(getattr(model, "is_pretrained", False))
        optimizer = _optimizer(model, protocol, pretrained)
        ema = None
        if protocol.ema_decay > 0:
            from timm.utils import ModelEmaV3

            # decay warmup: a short run must forget its random initial weights (and BatchNorm
            # statistics) quickly; without it a short run's EMA still holds a share of them and
            # can predict one class (benchmarks/recipe)
            ema = ModelEmaV3(model, decay=protocol.ema_decay, use_warmup=True)
        return cls(
            train=BatchFeeder(data.train, device, augment),
            val=BatchFeeder(data.val, device),
            criterion=_criterion(protocol, data, device),
            optimizer=optimizer,
            scheduler=_scheduler(optimizer, protocol),
            scaler=torch.amp.GradScaler(
                "cuda", enabled=autocast_dtype(device, protocol.precision) == torch.float16
            ),
            generator=generator,
            freeze_epochs=protocol.freeze_epochs if pretrained else 0,
            ema=ema,
        )


def _train_and_validate(
    model: nn.Module,
    t: _Training,
    data: PreparedData,
    protocol: ProtocolConfig,
    device: torch.device,
    epoch: int,
    on_batch: BatchCallback | None = None,
) -> dict[str, float]:
    """One epoch of training (backbone frozen during the first ``freeze_epochs``), then the
    validation metrics and the epoch's training numbers."""
    frozen = epoch <= t.freeze_epochs
    _set_backbone_trainable(model, not frozen)
    started = time.perf_counter()
    train_loss = train_one_epoch(
        model,
        t.train,
        t.optimizer,
        t.criterion,
        t.scaler,
        protocol.batch_size,
        t.generator,
        device,
        ema=t.ema,
        precision=protocol.precision,
        on_batch=on_batch,
    )
    seconds = time.perf_counter() - started
    if not math.isfinite(train_loss):
        raise DivergedError(f"training loss became {train_loss} in epoch {epoch}")
    lr = t.optimizer.param_groups[0]["lr"]
    if t.scheduler is not None:
        t.scheduler.step()
    validated = t.ema.module if t.ema is not None else model
    probs, val_loss = predict(validated, t.val, protocol.eval_batch_size, device)
    metrics = validation_metrics(data.val.labels, probs, data.class_names, val_loss)
    metrics.update(
        train_loss=train_loss,
        lr=lr,
        epoch_seconds=seconds,
        images_per_second=len(t.train) / seconds if seconds > 0 else math.nan,
        backbone_frozen=float(frozen),
    )
    return metrics


def _criterion(protocol: ProtocolConfig, data: PreparedData, device: torch.device) -> nn.Module:
    """Cross-entropy, class-weighted ("balanced") by the training labels unless switched off."""
    weight = None
    if protocol.class_weights == "balanced":
        classes = np.arange(len(data.class_names))
        present = np.unique(data.train.labels)
        w = np.ones(len(classes))
        w[present] = compute_class_weight("balanced", classes=present, y=data.train.labels)
        weight = torch.tensor(w, dtype=torch.float32, device=device)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=protocol.label_smoothing)


def _scheduler(
    optimizer: torch.optim.Optimizer, protocol: ProtocolConfig
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Per epoch: ``warmup_epochs`` linear from 10% of each group's lr, then cosine to 1%."""
    warmup = min(protocol.warmup_epochs, protocol.max_epochs - 1)
    main: torch.optim.lr_scheduler.LRScheduler | None = None
    if protocol.scheduler == "cosine":
        main = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(protocol.max_epochs - warmup, 1), eta_min=protocol.lr * 0.01
        )
    if warmup <= 0:
        return main
    ramp = torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=0.1, end_factor=1.0, total_iters=warmup
    )
    if main is None:
        return ramp
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


def train_one_epoch(
    model: nn.Module,
    train: BatchFeeder,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    scaler: torch.amp.GradScaler,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    ema: Any = None,
    precision: str = "auto",
    on_batch: BatchCallback | None = None,
) -> float:
    """The hot loop: no per-step host sync; the mean loss is read once at the end. ``ema``
    (timm ModelEmaV3) is updated after every optimizer step; ``on_batch`` hears how many
    images have been stepped on (a count: it never waits for the device)."""
    loss_sum = torch.zeros((), device=device)
    done = 0
    for x, y in train.batches(batch_size, shuffle=True, generator=generator):
        interrupts.check()  # a plain flag: a lost Ctrl-C stops within one batch
        loss = train_step(
            model, to_channels_last(x), y, optimizer, criterion, scaler, device, precision
        )
        if ema is not None:
            ema.steps = getattr(ema, "steps", 0) + 1
            ema.update(model, step=ema.steps)
        loss_sum += loss.detach() * len(y)
        done += len(y)
        if on_batch is not None:
            on_batch(done, len(train))
    return float(loss_sum) / len(train)


def train_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    precision: str = "auto",
) -> torch.Tensor:
    """One optimizer step under ``precision`` (see :func:`autocast_dtype`); returns the
    (undetached) loss."""
    with autocast(device, precision):
        loss = criterion(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss


@torch.inference_mode()
def predict(
    model: nn.Module,
    feeder: BatchFeeder,
    batch_size: int,
    device: torch.device,
    tta: str = "none",
    precision: str = "auto",
) -> tuple[np.ndarray, float]:
    """Class probabilities for a whole split (large batches, inference mode) and the mean loss.

    ``tta="hflip"``: the mean of the probabilities of each image and its mirror image
    (test-time augmentation; the loss stays the plain images'). ``precision``: as
    ``autocast_dtype``; the final evaluation passes ``fp32``, the arithmetic the deployed model
    runs in, so thresholds are chosen on the numbers they are applied to."""
    model.eval()
    chunks, loss_sum = [], torch.zeros((), device=device)
    for x, y in feeder.batches(batch_size):
        x = to_channels_last(x)
        with autocast(device, precision):
            logits = model(x).float()
            mirrored = model(torch.flip(x, dims=[3])).float() if tta == "hflip" else None
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum")
        probs = torch.softmax(logits, 1)
        if mirrored is not None:
            probs = (probs + torch.softmax(mirrored, 1)) / 2
        chunks.append(probs)
    model.train()
    probs = torch.cat(chunks).cpu().numpy().astype(np.float64)
    return probs, float(loss_sum) / max(len(feeder), 1)


def _optimizer(
    model: nn.Module, protocol: ProtocolConfig, pretrained: bool
) -> torch.optim.Optimizer:
    head = list(model.head_parameters())
    backbone_lr = protocol.lr * (protocol.backbone_lr_mult if pretrained else 1.0)
    groups = [{"params": head, "lr": protocol.lr}]
    groups += _backbone_groups(model, backbone_lr, protocol, pretrained)
    if protocol.optimizer == "sgd":
        return torch.optim.SGD(
            groups, momentum=protocol.momentum, weight_decay=protocol.weight_decay, nesterov=True
        )
    return torch.optim.AdamW(groups, weight_decay=protocol.weight_decay)


def _backbone_groups(
    model: nn.Module, backbone_lr: float, protocol: ProtocolConfig, pretrained: bool
) -> list[dict[str, Any]]:
    """The backbone's parameter groups: one at ``backbone_lr``, or with ``layer_decay`` < 1 on a
    pretrained backbone, timm's layer groups at ``backbone_lr * scale`` (deepest layer 1)."""
    if protocol.layer_decay >= 1.0 or not pretrained:
        return [{"params": list(model.backbone_parameters()), "lr": backbone_lr}]
    from timm.optim import param_groups_layer_decay

    groups = param_groups_layer_decay(
        model.backbone,
        weight_decay=protocol.weight_decay,
        layer_decay=protocol.layer_decay,
        weight_decay_exclude_1d=False,  # the same weight decay as without layer decay
    )
    for group in groups:
        group["lr"] = backbone_lr * group.pop("lr_scale")
    return groups


def _set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    for p in model.backbone_parameters():
        p.requires_grad_(trainable)
    model.train()
    if not trainable:
        model.backbone.eval()  # frozen means frozen: BatchNorm statistics stay ImageNet's
