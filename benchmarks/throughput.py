"""Training throughput: pneumobench's data path against the ceiling and against the notebook way.

For each model, in one process, training images per second for:

- ``upper_bound``: the same model, batch size, image size and precision on random tensors already
  on the device (no data pipeline can beat it);
- ``pneumobench``: the project's own training epoch (``train_one_epoch``) on real data, epoch 1
  including building the decoded-image cache, later epochs reading it;
- ``naive``: torchvision ``ImageFolder`` + PIL transforms per image + ``DataLoader`` with one
  worker per core: what the notebooks do (in the same precision as the other arms, so the ratios
  measure the data path alone).

Also: peak resident memory, the cache's memory against the raw uint8 size of the images, device,
versions and image source resolution. Prints a table and writes a JSON report.

    uv run python benchmarks/throughput.py                      # 224 px shared JPEGs, 64 px
    uv run python benchmarks/throughput.py --source fullres     # ~1300x900 JPEGs made from them
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumobench.config import AugmentConfig, parse_config  # noqa: E402
from pneumobench.data import prepare_data  # noqa: E402
from pneumobench.data.batches import BatchFeeder  # noqa: E402
from pneumobench.data.cache import clear_memory_cache  # noqa: E402
from pneumobench.registry import create_model  # noqa: E402
from pneumobench.train.device import (  # noqa: E402
    autocast,
    autocast_dtype,
    configure_backends,
    resolve_device,
)
from pneumobench.train.protocol import train_one_epoch, train_step  # noqa: E402

FULLRES = (1300, 944)  # about the originals' 1.4:1 grey frames


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_subset(src: Path, dst: Path, per_class: int, fullres: bool) -> Path:
    """A train/test folder of ``per_class`` images per class, optionally blown up to full size."""
    from PIL import Image

    marker = dst / f".done-{per_class}-{fullres}"
    if marker.exists():
        return dst
    shutil.rmtree(dst, ignore_errors=True)
    for split in ("train", "test"):
        for cls in ("NORMAL", "PNEUMONIA"):
            out = dst / split / cls
            out.mkdir(parents=True)
            n = per_class if split == "train" else max(4, per_class // 8)
            for path in sorted((src / split / cls).iterdir())[:n]:
                if fullres:
                    with Image.open(path) as img:
                        img.convert("L").resize(FULLRES, Image.Resampling.BICUBIC).save(
                            out / path.name, quality=90
                        )
                else:
                    shutil.copy(path, out / path.name)
    marker.touch()
    return dst


def build(name: str, size: int, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name, 2, pretrained=False, dropout=0.1, image_size=size).to(device)
    return model.to(memory_format=torch.channels_last)  # as pneumobench trains it


def training_parts(model: nn.Module, device: torch.device):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype(device) == torch.float16)
    return optimizer, nn.CrossEntropyLoss(), scaler


def upper_bound(name: str, size: int, batch: int, steps: int, device: torch.device) -> float:
    model = build(name, size, device)
    optimizer, criterion, scaler = training_parts(model, device)
    x = torch.rand(batch, 1, size, size, device=device)
    y = torch.randint(0, 2, (batch,), device=device)
    x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        train_step(model, x, y, optimizer, criterion, scaler, device)

    for _ in range(5):
        step()
    best = 0.0
    for _ in range(4):  # the ceiling: best of several windows, so a noisy moment cannot lower it
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        best = max(best, steps * batch / (time.perf_counter() - start))
    return best


def pneumobench_epochs(name, data_dir, size, batch, epochs, device, cache_dir):
    """Epoch 1 includes scanning and decoding the data into the cache; later epochs only train."""
    clear_memory_cache()
    shutil.rmtree(cache_dir, ignore_errors=True)
    raw = {
        "name": "throughput",
        "data": {
            "source": "folder",
            "path": str(data_dir),
            "image_size": size,
            "cache_dir": str(cache_dir),
        },
        "models": [name],
    }
    config = parse_config(raw)
    model = build(name, size, device)
    optimizer, criterion, scaler = training_parts(model, device)
    generator = torch.Generator().manual_seed(0)
    rates = []
    start = time.perf_counter()
    data = prepare_data(config)  # once per run, as in `pneumobench run`: decodes into the cache
    cache = {
        "decode_seconds": time.perf_counter() - start,
        "raw_uint8_mb": data.train.source.nbytes / 2**20,
    }
    feeder = BatchFeeder(data.train, device, AugmentConfig())
    for epoch in range(1, epochs + 1):
        if epoch > 1:
            start = time.perf_counter()
        train_one_epoch(model, feeder, optimizer, criterion, scaler, batch, generator, device)
        sync(device)
        rates.append(len(feeder) / (time.perf_counter() - start))
    return rates, cache


def cache_memory(data_dir: Path, size: int, cache_dir: Path) -> dict[str, float]:
    """Memory the decoded-image cache costs against the raw uint8 size of the images it holds,
    measured in a fresh child process (so nothing else this script did is counted): peak and
    final resident memory above the process's baseline after imports."""
    import subprocess

    code = f"""
import json, shutil, sys
sys.path.insert(0, {str(ROOT)!r})
from pneumobench.config import parse_config
from pneumobench.data import prepare_data
def rss():
    import os
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
shutil.rmtree({str(cache_dir)!r}, ignore_errors=True)
config = parse_config({{'name': 'mem', 'data': {{'source': 'folder', 'path': {str(data_dir)!r},
    'image_size': {size}, 'cache_dir': {str(cache_dir)!r}}}, 'models': ['simple_cnn']}})
def hwm():  # VmHWM starts afresh at exec, unlike ru_maxrss, which keeps the parent's peak
    line = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]
    return int(line.split()[1]) / 1024
base = rss()
data = prepare_data(config)
raw = data.train.source.nbytes / 2**20
for start in range(0, len(data.train.source), 500):  # touch every page
    int(data.train.source[start:start + 500].sum())
print(json.dumps({{'images': len(data.train.source), 'raw_uint8_mb': raw,
    'final_rss_growth_mb': rss() - base,
    'peak_rss_growth_mb': hwm() - base}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["peak_vs_raw"] = report["peak_rss_growth_mb"] / report["raw_uint8_mb"]
    report["final_vs_raw"] = report["final_rss_growth_mb"] / report["raw_uint8_mb"]
    return report


def naive_epochs(name, data_dir, size, batch, epochs, device):
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [
            transforms.Grayscale(1),
            transforms.Resize((size, size)),
            transforms.RandomAffine(10, translate=(0.05, 0.05), scale=(0.9, 1.1)),
            transforms.ToTensor(),
        ]
    )
    dataset = datasets.ImageFolder(str(data_dir / "train"), transform=tf)
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        num_workers=os.cpu_count() or 1,
        persistent_workers=False,
    )
    model = build(name, size, device)
    optimizer, criterion = torch.optim.AdamW(model.parameters(), lr=1e-3), nn.CrossEntropyLoss()
    # the same precision and grad scaling as the other arms: the ratios compare data paths only
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype(device) == torch.float16)
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            with autocast(device):
                loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        sync(device)
        rates.append(len(dataset) / (time.perf_counter() - start))
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="simple_cnn,resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=300, help="train images per class")
    parser.add_argument("--source", choices=["shared224", "fullres"], default="shared224")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "chest_xray")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work", type=Path, default=ROOT / ".pneumobench" / "bench")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--cache-memory",
        type=int,
        default=224,
        metavar="PX",
        help="also measure the cache's memory on the whole --data folder at PX (0: skip)",
    )
    args = parser.parse_args()

    device = resolve_device(args.device)
    configure_backends(device)  # cuDNN autotuning and TF32 for every arm, as training runs
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    fullres = args.source == "fullres"
    data_dir = make_subset(args.data, args.work / f"data-{args.source}", args.per_class, fullres)
    device_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    results = []
    for name in args.models.split(","):
        ceiling = upper_bound(name, args.image_size, args.batch_size, 10, device)
        ours, cache = pneumobench_epochs(
            name,
            data_dir,
            args.image_size,
            args.batch_size,
            args.epochs,
            device,
            args.work / "cache",
        )
        naive = naive_epochs(name, data_dir, args.image_size, args.batch_size, args.epochs, device)
        results.append(
            {
                "model": name,
                "upper_bound_img_s": ceiling,
                "pneumobench_img_s": ours,
                "naive_img_s": naive,
                "pneumobench_vs_upper_bound_epochs_2plus": float(np.mean(ours[1:])) / ceiling,
                "pneumobench_vs_naive_epoch_1": ours[0] / naive[0],
                "pneumobench_vs_naive_epochs_2plus": float(np.mean(ours[1:]) / np.mean(naive[1:])),
                "cache_build": cache,
            }
        )
    memory = None
    if args.cache_memory:
        memory = cache_memory(args.data, args.cache_memory, args.work / "cache-memory")
    report = {
        "cache_memory": memory,
        "device": device_name,
        "device_type": device.type,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "precision": str(autocast_dtype(device) or torch.float32),
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "source": args.source,
        "source_resolution": f"{FULLRES[0]}x{FULLRES[1]}" if fullres else "224x224",
        "train_images": 2 * args.per_class,
        "epochs": args.epochs,
        "peak_rss_mb": peak_rss_mb(),
        "results": results,
    }
    out = args.out or ROOT / "benchmarks" / "results" / (
        f"throughput-{device.type}-{args.source}-{args.image_size}px.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(
        f"{device_name} ({device.type}), {args.source} {report['source_resolution']} -> "
        f"{args.image_size} px, batch {args.batch_size}, {2 * args.per_class} train images"
    )
    header = (
        f"{'model':<12} {'upper':>7} {'ours e1':>8} {'ours e2+':>8} {'naive e1':>8} "
        f"{'naive e2+':>9} | {'ours/upper e2+':>14} {'ours/naive e1':>13} {'ours/naive e2+':>14}"
    )
    print(header + "   (training images per second; e2+ = mean of epochs 2..N)")
    for r in results:
        ours, naive = r["pneumobench_img_s"], r["naive_img_s"]
        print(
            f"{r['model']:<12} {r['upper_bound_img_s']:>7.0f} {ours[0]:>8.0f} "
            f"{np.mean(ours[1:]):>8.0f} {naive[0]:>8.0f} {np.mean(naive[1:]):>9.0f} | "
            f"{r['pneumobench_vs_upper_bound_epochs_2plus']:>14.2f} "
            f"{r['pneumobench_vs_naive_epoch_1']:>13.2f} "
            f"{r['pneumobench_vs_naive_epochs_2plus']:>14.2f}"
        )
    if memory:
        print(
            f"decode cache on all {memory['images']} images of {args.data} at "
            f"{args.cache_memory} px: raw {memory['raw_uint8_mb']:.0f} MB, peak growth "
            f"{memory['peak_rss_growth_mb']:.0f} MB ({memory['peak_vs_raw']:.2f}x), after "
            f"{memory['final_rss_growth_mb']:.0f} MB ({memory['final_vs_raw']:.2f}x)"
        )
    print(f"peak RSS {report['peak_rss_mb']:.0f} MB; report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
