"""The Kermany et al. chest X-rays from Mendeley Data v2, extracted into the Kaggle layout.

The archive (``ChestXRay2017.zip``, Mendeley Data v2, DOI 10.17632/rscbjbr9sj.2, CC BY 4.0)
holds ``chest_xray/{train,test}/{NORMAL,PNEUMONIA}`` plus macOS litter (``__MACOSX/``,
``.DS_Store``, ``._*``). The extracted folder is what ``source: folder`` reads: the Kaggle copy
has the same files, with 16 of train moved into a ``val/`` folder (which pneumobench folds back
into train before carving its own validation set by patient).
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from pneumobench.data.fetch.download import DEFAULT_TIMEOUT, RemoteFile, fetch
from pneumobench.errors import DataError

# The SHA-256 and size published with download scripts of this archive (no md5 is published).
ARCHIVE = RemoteFile(
    "ChestXRay2017.zip",
    "https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/"
    "f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded",
    sha256="13efc055629733dbab07877f8b3c9f81097840dbcdaa326a8542322c2281ce36",
    approx_size="1.2 GB",
)
FOLDER = "chest_xray"
SPLIT_NAMES = {"train", "val", "test"}
CLASS_NAMES = {"NORMAL", "PNEUMONIA"}
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
DONE_MARKER = ".pneumobench-fetched"


def fetch_kermany(
    root: Path,
    *,
    mirror: str | None = None,
    archive: RemoteFile = ARCHIVE,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    keep_archive: bool = True,
) -> Path:
    """``root/chest_xray`` in the Kaggle layout, downloaded (resumable, checksum verified) and
    extracted unless a finished extraction is there. Returns the folder for ``data.path``."""
    target = root / FOLDER
    if (target / DONE_MARKER).is_file():
        return target
    if target.exists():
        raise DataError(
            f"{target} exists but was not extracted by `pneumobench data fetch kermany`; point "
            "data.path at it as it is, or move it away and fetch again"
        )
    zip_path = fetch(
        archive, root / archive.filename, mirror=mirror, timeout=timeout, progress=progress
    )
    extract_kaggle_layout(zip_path, target)
    if not keep_archive:
        zip_path.unlink()
    return target


def extract_kaggle_layout(zip_path: Path, target: Path) -> int:
    """Extract the images of ``zip_path`` into ``target/<split>/<CLASS>/``; the number extracted.

    Only ``.../<split>/<CLASS>/<file>.jpeg`` entries are kept, found wherever they sit in the
    archive (a top folder, the Kaggle copy's nested duplicate); litter is skipped; a name that
    would escape ``target`` is never written. The extraction happens in a temporary folder that
    is renamed when complete: an interrupted extraction leaves no half folder.
    """
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    written: set[str] = set()
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for entry in archive.infolist():
                rel = _kaggle_path(entry.filename)
                if entry.is_dir() or rel is None or rel in written:
                    continue  # the Kaggle zip repeats every image under chest_xray/chest_xray/
                out = staging / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(entry) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                written.add(rel)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(
            f"{zip_path}: not a readable zip archive ({exc}); delete it and fetch again"
        ) from None
    if not written:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(
            f"{zip_path}: no images in the <split>/<NORMAL|PNEUMONIA>/ layout; is it the Kermany "
            "chest X-ray archive?"
        )
    (staging / DONE_MARKER).write_text(f"{zip_path.name}\n{len(written)} images\n")
    os.replace(staging, target)
    return len(written)


def _kaggle_path(name: str) -> str | None:
    """``split/CLASS/file`` of an archive entry, or None for litter and anything else."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if any(p in ("..", "__MACOSX") or p.startswith("._") for p in parts):
        return None
    for i in range(len(parts) - 2):
        split, cls, rest = parts[i].lower(), parts[i + 1].upper(), parts[i + 2 :]
        image = len(rest) == 1 and PurePosixPath(rest[0]).suffix.lower() in IMAGE_SUFFIXES
        if split in SPLIT_NAMES and cls in CLASS_NAMES and image:
            return f"{split}/{cls}/{rest[0]}"
    return None
