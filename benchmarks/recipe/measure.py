"""What each option of the stronger recipe changes ON VALIDATION (never test).

The default benchmark's data (PneumoniaMNIST, 32 px, seed 42) and its best single model family
(resnet18 from scratch) with fixed hyperparameters (the best trial of the default benchmark:
lr 1.01e-3, weight decay 5.57e-4, dropout 0.31), trained once per recipe variant with the same
seed; each variant's final (early-stopped) model is scored on the validation split: ROC AUC of
P(pneumonia), F1 and accuracy at the argmax, with and without hflip test-time augmentation.

Run from the project folder (``PNEUMOBENCH_DATA_ROOT`` pointing at pneumoniamnist.npz):
``uv run python benchmarks/recipe/measure.py [variant ...]``; prints a table and writes
``benchmarks/results/recipe.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from pneumobench.benchmark.training import fit, predict
from pneumobench.config import load_config
from pneumobench.data.batches import BatchFeeder
from pneumobench.data.prepare import prepare_data
from pneumobench.registry import create_model

BEST = {
    "lr": 1.0100874254895759e-3,
    "weight_decay": 5.571934679539293e-4,
    "dropout": 0.3114780694667338,
}
VARIANTS = {
    "baseline (4 epochs)": {"max_epochs": 4, "patience": 2},
    "+ EMA 0.99": {"max_epochs": 4, "patience": 2, "ema_decay": 0.99},
    "+ EMA 0.999": {"max_epochs": 4, "patience": 2, "ema_decay": 0.999},
    "+ warmup 1 epoch": {"max_epochs": 4, "patience": 2, "warmup_epochs": 1},
    "8 epochs": {"max_epochs": 8, "patience": 3},
    "8 epochs + EMA 0.995": {"max_epochs": 8, "patience": 3, "ema_decay": 0.995},
    "8 epochs + EMA 0.995 + warmup 1": {
        "max_epochs": 8,
        "patience": 3,
        "ema_decay": 0.995,
        "warmup_epochs": 1,
    },
}


def scores(model: torch.nn.Module, data, tta: str) -> dict[str, float]:
    probs, _ = predict(
        model, BatchFeeder(data.val, torch.device("cpu")), 512, torch.device("cpu"), tta=tta
    )
    y = data.val.labels
    return {
        "val_auc": round(float(roc_auc_score(y, probs[:, 1])), 4),
        "val_f1": round(float(f1_score(y, probs.argmax(1))), 4),
        "val_accuracy": round(float(accuracy_score(y, probs.argmax(1))), 4),
    }


def main() -> None:
    torch.set_num_threads(2)
    config = load_config("experiments.yaml")
    data = prepare_data(config)
    wanted = sys.argv[1:] or list(VARIANTS)
    out = Path("benchmarks/results/recipe.json")
    results = json.loads(out.read_text())["variants"] if out.is_file() and sys.argv[1:] else {}
    for name in wanted:
        protocol = config.protocol.model_copy(update={**BEST, **VARIANTS[name]})
        torch.manual_seed(config.seed)
        model = create_model(
            "resnet18", 2, pretrained=False, dropout=protocol.dropout, image_size=32
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
            seed=config.seed,
        )
        seconds = time.perf_counter() - started
        row = {
            "best_epoch": result.best_epoch,
            "seconds": round(seconds, 1),
            **scores(model, data, "none"),
            **{f"tta_{k}": v for k, v in scores(model, data, "hflip").items()},
        }
        results[name] = row
        print(f"{name:34s} " + "  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    report = {
        "data": f"{config.data.source} {config.data_path().name}, {config.data.image_size} px, "
        f"digest {data.digest}, seed {config.seed}",
        "model": "resnet18 from scratch",
        "fixed_hyperparameters": BEST,
        "scored_on": "validation split only",
        "variants": results,
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
