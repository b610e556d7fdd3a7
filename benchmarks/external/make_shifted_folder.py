"""Make an "other site" copy of a Kermany-layout test folder for ``pneumobench evaluate``.

Each test image is re-acquired as a different device might deliver it: grey, gamma 0.8,
contrast compressed to 80% around mid-grey, a 1 px Gaussian blur, resized to 320 x 256
(not square) and saved as JPEG quality 70. File names are kept, so patients and the
bacterial / viral labels stay readable.

    uv run python benchmarks/external/make_shifted_folder.py ../shared/data/chest_xray/test OUT

These are the same children as the internal test split: the result measures robustness of each
deployed threshold to an acquisition shift, not performance in a new population.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


def shift(image: Image.Image) -> Image.Image:
    grey = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    grey = grey**0.8
    grey = 0.5 + 0.8 * (grey - 0.5)
    out = Image.fromarray(np.clip(grey * 255, 0, 255).astype(np.uint8))
    return out.filter(ImageFilter.GaussianBlur(1)).resize((320, 256), Image.BILINEAR)


def main(source: Path, out: Path) -> None:
    n = 0
    for cls in ("NORMAL", "PNEUMONIA"):
        (out / cls).mkdir(parents=True, exist_ok=True)
        for path in sorted((source / cls).glob("*.jp*g")):
            shift(Image.open(path)).save(out / cls / path.name, quality=70)
            n += 1
    print(f"{n} images -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
