"""The GPU proof: every device-dependent path of pneumobench run once on a real accelerator, with
one JSON report. On a lent H100/H200 it is meant to finish in under 8 minutes; with
``--device cpu`` it runs the same checks that do not need CUDA (CI keeps it working; the CUDA-only
ones are reported as skipped, never as passed).

    uv run python benchmarks/gpu_check.py --device cuda     # on the GPU machine
    uv run python benchmarks/gpu_check.py --device cpu --quick

Checks, each timed, each ``ok`` / ``failed`` (with the error) / ``skipped`` (with why):

- ``sync_per_step``: host synchronisations per training step, counted by
  ``torch.cuda.set_sync_debug_mode`` over one epoch (the target is none);
- ``precisions``: a short ``fit`` in fp32 (TF32 on CUDA), bf16, and forced fp16 with the
  GradScaler, each with EMA weights: finite losses, the precision each really used;
- ``checkpoint``: a state dict saved from the device, read on CPU with ``weights_only=True``,
  the same outputs;
- ``export``: ONNX and TorchScript from the trained model with their parity;
- ``grad_cam``: Grad-CAM maps of the trained model;
- ``oom``: an out-of-memory provoked with a small memory fraction, recognised, survived, and the
  final evaluation's retry at a smaller batch;
- ``throughput``: ``benchmarks/throughput.py`` (224 px, simple_cnn, resnet18, convnext_tiny on a
  GPU; a tiny CPU run otherwise);
- ``two_workers``: a 2-trial study run by two ``pneumobench run`` processes on one device, exactly
  2 trials finished.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumobench.config import parse_config  # noqa: E402
from pneumobench.data import prepare_data  # noqa: E402
from pneumobench.data.batches import BatchFeeder  # noqa: E402
from pneumobench.registry import create_model  # noqa: E402
from pneumobench.train import device as D  # noqa: E402
from pneumobench.train.protocol import fit, train_one_epoch  # noqa: E402


class Skipped(Exception):
    """A check that cannot run here (why in the message)."""


def _npz(folder: Path, n: int = 240, size: int = 28) -> Path:
    """A MedMNIST-style file of learnable synthetic X-rays (bright blob: pneumonia)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", n), ("val", n // 4), ("test", n // 4)):
        labels = np.arange(count) % 2
        images = rng.normal(90, 20, (count, size, size))
        yy, xx = np.ogrid[:size, :size]
        for i in np.flatnonzero(labels):
            cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
            images[i] += 120 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 6) ** 2))
        arrays[f"{split}_images"] = np.clip(images, 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels.reshape(-1, 1)
    path = folder / "synthetic.npz"
    np.savez(path, **arrays)
    return path


def _config(npz: Path, device: str, image_size: int, **over: Any) -> Any:
    raw = {
        "name": "gpu-check",
        "seed": 1,
        "task": "binary",
        "device": device,
        "data": {"source": "medmnist", "path": str(npz), "image_size": image_size},
        "protocol": {"max_epochs": 2, "patience": 2, "batch_size": 32, "freeze_epochs": 0},
        "search": {"n_trials": 2, "pruner": "none", "storage": "sqlite:///optuna.db"},
        "evaluation": {"bootstrap_resamples": 100},
        "models": ["simple_cnn"],
        **over,
    }
    return parse_config(raw)


class Checks:
    """The checks, sharing one prepared data set and one trained model."""

    def __init__(self, device: torch.device, work: Path, quick: bool) -> None:
        self.device, self.work, self.quick = device, work, quick
        self.cuda = device.type == "cuda"
        self.npz = _npz(work, n=160 if quick else 480)
        self.config = _config(self.npz, str(device), 32 if quick else 64)
        self.data = prepare_data(self.config)
        self.model: torch.nn.Module | None = None

    def _fit(self, precision: str = "auto", ema: float = 0.0) -> tuple[torch.nn.Module, Any]:
        model = create_model(
            "simple_cnn", 2, pretrained=False, image_size=self.config.data.image_size
        )
        protocol = self.config.protocol.model_copy(
            update={"precision": precision, "ema_decay": ema}
        )
        result = fit(
            model,
            self.data,
            protocol,
            augment=self.config.data.augment,
            objective="val_f1",
            direction="maximize",
            device=self.device,
            seed=1,
        )
        return model, result

    def sync_per_step(self) -> dict:
        if not self.cuda:
            raise Skipped("needs CUDA (set_sync_debug_mode)")
        model, _ = self._fit()
        feeder = BatchFeeder(self.data.train, self.device, self.config.data.augment)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        criterion = torch.nn.CrossEntropyLoss()
        scaler = torch.amp.GradScaler("cuda", enabled=False)
        steps = -(-len(feeder) // 32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                train_one_epoch(
                    model,
                    feeder,
                    optimizer,
                    criterion,
                    scaler,
                    32,
                    torch.Generator().manual_seed(0),
                    self.device,
                )
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [str(w.message)[:160] for w in caught if "synchroniz" in str(w.message).lower()]
        # the epoch ends with one deliberate read of the mean loss
        return {
            "steps": steps,
            "syncs": len(syncs),
            "per_step": len(syncs) / steps,
            "examples": syncs[:3],
        }

    def precisions(self) -> dict:
        out = {}
        for name, precision, force_fp16 in (
            ("fp32", "fp32", False),
            ("bf16", "bf16", False),
            ("fp16+scaler", "auto", True),
        ):
            if force_fp16 and not self.cuda:
                out[name] = "skipped: fp16 with a GradScaler is a CUDA path"
                continue
            saved = D.cuda_has_native_bf16
            if force_fp16:
                D.cuda_has_native_bf16 = lambda device: False  # as on a pre-Ampere GPU
            try:
                model, result = self._fit(precision, ema=0.99)
                losses = [h["train_loss"] for h in result.history]
                out[name] = {
                    "effective": D.effective_precision(self.device, precision),
                    "train_losses": losses,
                    "finite": bool(np.isfinite(losses).all()),
                    "best_val_f1": result.best_score,
                }
            finally:
                D.cuda_has_native_bf16 = saved
            self.model = model
        if not all(v["finite"] for v in out.values() if isinstance(v, dict)):
            raise AssertionError(f"a precision diverged: {out}")
        return out

    def _trained(self) -> torch.nn.Module:
        if self.model is None:
            self.model, _ = self._fit()
        return self.model

    def checkpoint(self) -> dict:
        model = self._trained().to(self.device).eval()
        path = self.work / "checkpoint.pt"
        torch.save(model.state_dict(), path)
        state = torch.load(path, map_location="cpu", weights_only=True)
        cpu = create_model(
            "simple_cnn", 2, pretrained=False, image_size=self.config.data.image_size
        )
        cpu.load_state_dict(state)
        x = torch.rand(4, 1, self.config.data.image_size, self.config.data.image_size)
        with torch.inference_mode():
            gap = (model(x.to(self.device)).float().cpu() - cpu.eval()(x)).abs().max().item()
        return {"max_abs_logit_diff": gap, "ok": gap < 1e-3}

    def export(self) -> dict:
        from pneumobench.serving.export import export

        images = self.data.test.images[:16]
        out = {}
        for fmt in ("onnx", "torchscript"):
            model = self._trained().to(self.device)
            out[fmt] = export(model, images, fmt, self.work / f"model.{fmt}")
        return {"max_abs_prob_diff": out}

    def grad_cam(self) -> dict:
        from pneumobench.evaluate.saliency import grad_cam

        model = self._trained().to(self.device)
        images = self.data.test.images[:8]
        maps = grad_cam(model, images, np.ones(len(images), dtype=int))
        return {"shape": list(maps.shape), "finite": bool(np.isfinite(maps).all())}

    def oom(self) -> dict:
        if not self.cuda:
            raise Skipped("needs CUDA (a per-process memory fraction)")
        from pneumobench.benchmark.final import predict_with_retries

        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(self.device).total_memory
        torch.cuda.set_per_process_memory_fraction(2**30 / total, self.device)  # 1 GiB
        caught = None
        try:
            torch.empty(2**31, dtype=torch.uint8, device=self.device)  # 2 GiB
        except Exception as exc:
            caught = exc
        recognised = caught is not None and D.is_allocation_failure(caught)
        D.release_memory(self.device)
        model = self._trained().to(self.device)
        feeder = BatchFeeder(self.data.test, self.device)
        probs = predict_with_retries(model, feeder, 4096, self.device, "none")
        torch.cuda.set_per_process_memory_fraction(1.0, self.device)
        return {
            "raised": type(caught).__name__,
            "recognised": recognised,
            "predicted_after": list(probs.shape),
        }

    def throughput(self) -> dict:
        args = (
            [
                "--models",
                "simple_cnn,resnet18,convnext_tiny",
                "--image-size",
                "224",
                "--epochs",
                "2",
                "--per-class",
                "300",
            ]
            if self.cuda
            else [
                "--models",
                "simple_cnn",
                "--image-size",
                "32",
                "--epochs",
                "1",
                "--per-class",
                "40",
            ]
        )
        out = self.work / "throughput.json"
        data = ROOT.parent / "shared" / "data" / "chest_xray"
        if not data.is_dir():
            raise Skipped(f"{data} is not here (the throughput benchmark reads Kermany JPEGs)")
        run = subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "throughput.py"),
                *args,
                "--device",
                str(self.device),
                "--out",
                str(out),
                "--work",
                str(self.work / "tp"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if run.returncode != 0:
            raise RuntimeError(run.stderr[-1500:])
        return json.loads(out.read_text())

    def two_workers(self) -> dict:
        import yaml

        folder = self.work / "workers"
        folder.mkdir()
        raw = _config(self.npz, str(self.device), 32).model_dump(mode="json")
        raw["protocol"]["max_epochs"] = 1
        raw["search"]["storage"] = f"sqlite:///{folder / 'optuna.db'}"
        raw["tracking"]["uri"] = f"sqlite:///{folder / 'mlflow.db'}"
        (folder / "e.yaml").write_text(yaml.safe_dump(raw))
        command = [sys.executable, "-m", "pneumobench", "run", "e.yaml"]
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        procs = [
            subprocess.Popen(
                command,
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=600)[0] for p in procs]
        import optuna

        study = optuna.load_study(
            study_name="gpu-check/simple_cnn", storage=raw["search"]["storage"]
        )
        finished = [t for t in study.trials if t.state.is_finished() and t.state.name != "FAIL"]
        codes = [p.returncode for p in procs]
        if codes != [0, 0] or len(finished) != 2:
            raise AssertionError(f"exit codes {codes}, {len(finished)} trials; {outputs[0][-800:]}")
        return {"exit_codes": codes, "finished_trials": len(finished)}


def run_check(name: str, check: Callable[[], dict]) -> dict:
    started = time.perf_counter()
    try:
        result = {"status": "ok", "result": check()}
    except Skipped as why:
        result = {"status": "skipped", "why": str(why)}
    except Exception as exc:
        result = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "traceback": traceback.format_exc()[-3000:],
        }
    result["seconds"] = round(time.perf_counter() - started, 2)
    print(f"{name:15s} {result['status']:8s} {result['seconds']:7.1f} s", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="smaller data (CI)")
    parser.add_argument("--only", help="comma-separated check names")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = D.resolve_device(args.device)
    D.configure_backends(device)
    names = [
        "sync_per_step",
        "precisions",
        "checkpoint",
        "export",
        "grad_cam",
        "oom",
        "throughput",
        "two_workers",
    ]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    report: dict[str, Any] = {
        "device": str(device),
        "hardware": D.hardware(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "checks": {},
    }
    with tempfile.TemporaryDirectory(prefix="pneumobench-gpu-check-") as tmp:
        os.chdir(tmp)
        checks = Checks(device, Path(tmp), args.quick)
        for name in names:
            report["checks"][name] = run_check(name, getattr(checks, name))
    out = args.out or ROOT / "benchmarks" / "results" / f"gpu-check-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    failed = [n for n, r in report["checks"].items() if r["status"] == "failed"]
    print(f"-> {out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
