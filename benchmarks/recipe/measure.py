"""What each option of the stronger recipe changes ON VALIDATION (never test).

The default benchmark's data (PneumoniaMNIST, official splits) and its best single model family
(resnet18 from scratch) with fixed hyperparameters (the best trial of the default benchmark at
32 px: lr 1.01e-3, weight decay 5.57e-4, dropout 0.31), trained once per recipe variant; each
variant's final (early-stopped) model is scored on the validation split: ROC AUC of
P(pneumonia), log loss, F1 and accuracy at the argmax (and the AUC with hflip test-time
augmentation). Seed ensembles average the validation probabilities of variants that differ only
in their seed. A variant names its image size, seed, protocol options and augmentation options;
the validation probabilities are kept (``recipe_val_probs.npz``) so ensembles can be formed from
variants measured in earlier invocations.

Run from the project folder (``PNEUMOBENCH_DATA_ROOT`` pointing at pneumoniamnist.npz, and
``TORCH_HOME`` at the torch-hub cache for the pretrained MobileNetV2 variants):
``uv run python benchmarks/recipe/measure.py [variant ...]``; prints a table and writes
``benchmarks/results/recipe.json`` (variants named on the command line are merged into it).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from pneumobench.config import load_config
from pneumobench.data.batches import BatchFeeder
from pneumobench.data.prepare import prepare_data
from pneumobench.registry import create_model
from pneumobench.train.protocol import fit, predict

BEST = {
    "lr": 1.0100874254895759e-3,
    "weight_decay": 5.571934679539293e-4,
    "dropout": 0.3114780694667338,
}
SHORT = {"max_epochs": 4, "patience": 2}
INTENSITY = {"brightness": 0.1, "contrast": 0.2, "gamma": 0.3}


def variant(
    size: int = 32,
    seed: int = 42,
    model: str = "resnet18",
    pretrained: bool | str = False,
    augment: dict[str, Any] | None = None,
    **protocol: Any,
) -> dict[str, Any]:
    """One measured training: image size, seed, model, augmentation and protocol options."""
    return {
        "size": size,
        "seed": seed,
        "model": model,
        "pretrained": pretrained,
        "augment": augment or {},
        "protocol": {**SHORT, **protocol},
    }


VARIANTS: dict[str, dict[str, Any]] = {
    "baseline (4 epochs)": variant(),
    "+ EMA 0.99": variant(ema_decay=0.99),
    "+ EMA 0.999": variant(ema_decay=0.999),
    "+ warmup 1 epoch": variant(warmup_epochs=1),
    "8 epochs": variant(max_epochs=8, patience=3),
    "8 epochs + EMA 0.995": variant(max_epochs=8, patience=3, ema_decay=0.995),
    "8 epochs + EMA 0.995 + warmup 1": variant(
        max_epochs=8, patience=3, ema_decay=0.995, warmup_epochs=1
    ),
    "baseline, seed 1": variant(seed=1),
    "baseline, seed 2": variant(seed=2),
    "+ intensity jitter": variant(augment=INTENSITY),
    "+ intensity jitter, seed 1": variant(seed=1, augment=INTENSITY),
    "bf16": variant(precision="bf16"),
    "bf16, seed 1": variant(seed=1, precision="bf16"),
    "64 px": variant(size=64),
    "64 px, seed 1": variant(size=64, seed=1),
    "64 px bf16": variant(size=64, precision="bf16"),
    "64 px bf16, seed 1": variant(size=64, seed=1, precision="bf16"),
    "64 px bf16, seed 2": variant(size=64, seed=2, precision="bf16"),
    "MobileNetV2 ImageNet, 32 px": variant(model="tv:mobilenet_v2", pretrained="IMAGENET1K_V1"),
    "MobileNetV2 ImageNet, 64 px": variant(
        size=64, model="tv:mobilenet_v2", pretrained="IMAGENET1K_V1"
    ),
}
SEED_ENSEMBLES = {
    "seed ensemble 32 px (42, 1, 2)": [
        "baseline (4 epochs)",
        "baseline, seed 1",
        "baseline, seed 2",
    ],
    "seed ensemble 64 px bf16 (42, 1, 2)": [
        "64 px bf16",
        "64 px bf16, seed 1",
        "64 px bf16, seed 2",
    ],
}
RESULTS = Path("benchmarks/results")


def scores(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Validation scores of class probabilities."""
    return {
        "val_auc": round(float(roc_auc_score(y, probs[:, 1])), 4),
        "val_log_loss": round(float(log_loss(y, probs / probs.sum(1, keepdims=True))), 4),
        "val_f1": round(float(f1_score(y, probs.argmax(1))), 4),
        "val_accuracy": round(float(accuracy_score(y, probs.argmax(1))), 4),
    }


def measure(name: str, spec: dict[str, Any], cache: dict) -> tuple[dict[str, Any], np.ndarray]:
    """Train one variant and score it on validation: its row and validation probabilities."""
    key = (spec["size"], json.dumps(spec["augment"], sort_keys=True))
    if key not in cache:
        overrides = [f"data.image_size={spec['size']}"]
        overrides += [f"data.augment.{k}={v}" for k, v in spec["augment"].items()]
        config = load_config("experiments.yaml", overrides)
        cache[key] = (config, prepare_data(config))
    config, data = cache[key]
    protocol = config.protocol.model_copy(update={**BEST, **spec["protocol"]})
    torch.manual_seed(spec["seed"])
    model = create_model(
        spec["model"],
        2,
        pretrained=spec["pretrained"],
        dropout=protocol.dropout,
        image_size=spec["size"],
    )
    started = time.perf_counter()
    result = fit(
        model,
        data,
        protocol,
        augment=config.data.augment,
        objective="val_f1",
        direction="maximize",
        device=torch.device("cpu"),
        seed=spec["seed"],
    )
    seconds = time.perf_counter() - started
    cpu = torch.device("cpu")
    probs, _ = predict(model, BatchFeeder(data.val, cpu), 512, cpu)
    mirrored, _ = predict(model, BatchFeeder(data.val, cpu), 512, cpu, tta="hflip")
    y = data.val.labels
    row = {
        "spec": spec,
        "best_epoch": result.best_epoch,
        "seconds": round(seconds, 1),
        **scores(y, probs),
        "tta_val_auc": scores(y, mirrored)["val_auc"],
    }
    return row, probs


def main() -> None:
    torch.set_num_threads(2)
    wanted = sys.argv[1:] or list(VARIANTS)
    unknown = [name for name in wanted if name not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    out, probs_file = RESULTS / "recipe.json", RESULTS / "recipe_val_probs.npz"
    merge = bool(sys.argv[1:]) and out.is_file()
    results = json.loads(out.read_text())["variants"] if merge else {}
    kept = dict(np.load(probs_file)) if merge and probs_file.is_file() else {}
    cache: dict = {}
    for name in wanted:
        row, probs = measure(name, VARIANTS[name], cache)
        results[name], kept[name] = row, probs.astype(np.float32)
        shown = {k: v for k, v in row.items() if k != "spec"}
        print(f"{name:34s} " + "  ".join(f"{k} {v}" for k, v in shown.items()), flush=True)
    y = next(iter(cache.values()))[1].val.labels
    ensembles = {}
    for name, members in SEED_ENSEMBLES.items():
        if all(m in kept for m in members):
            ensembles[name] = {
                "members": members,
                **scores(y, np.mean([kept[m] for m in members], axis=0).astype(np.float64)),
            }
            print(f"{name:34s} {ensembles[name]}")
    report = {
        "data": "medmnist pneumoniamnist.npz (28 px, official splits), upsampled to each "
        "variant's size; seed per variant",
        "model": "resnet18 from scratch unless named",
        "fixed_hyperparameters": BEST,
        "scored_on": "validation split only",
        "variants": results,
        "seed_ensembles": ensembles,
    }
    out.write_text(json.dumps(report, indent=2))
    np.savez_compressed(probs_file, **kept)
    print(f"wrote {out} and {probs_file}")


if __name__ == "__main__":
    main()
