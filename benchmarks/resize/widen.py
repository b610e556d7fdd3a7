"""Kermany at its original aspect ratio for the data.resize measurement.

The shared Kermany images were squashed to 224x224; the originals are about 1.4:1. This writes
each one stretched back to 314x224 (grey JPEG, quality 92) into DEST (default /tmp/kwide), the
folder ``exp.yaml`` reads. Run: ``uv run python benchmarks/resize/widen.py [SRC] [DEST]``.
"""

import sys
from pathlib import Path

from PIL import Image

src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/chest_xray")
dst = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/kwide") / "chest_xray"
n = 0
for path in src.rglob("*.jpeg"):
    out = dst / path.relative_to(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(path).convert("L").resize((314, 224), Image.Resampling.BICUBIC)
    image.save(out, quality=92)
    n += 1
print(n)
