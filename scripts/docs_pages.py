"""Write the docs pages made from other sources, so they cannot drift:

- ``docs/configuration.md`` from the config schema itself (pydantic): every key, its type, its
  default and its description;
- ``docs/index.md`` (the site's home page) from ``README.md``, links rewritten for the site.

    uv run python scripts/docs_pages.py          # rewrite both
    uv run python scripts/docs_pages.py --check  # exit 1 if either is out of date (tests)
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "configuration.md"
INDEX = ROOT / "docs" / "index.md"
HEADER = """# Configuration reference

Generated from the schema by `scripts/docs_pages.py` (a test fails when this page and the
schema disagree). Every key is validated when a config loads: an unknown key names its location
and the closest valid key, a wrong type says what was expected. How the keys work together:
[Configuration](configuration-guide.md).

| key | type | default | meaning |
|---|---|---|---|
"""


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type(a) for a in args)
    if origin in (list, tuple, dict):
        inner = ", ".join(_type(a) for a in args if a is not Ellipsis)
        return f"{origin.__name__}[{inner}]"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation)).replace("Config", "")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        return ", ".join(f"`{k}`" for k in value)
    if value is None:
        return "none"
    if isinstance(value, Path):
        value = value.as_posix()
    return f"`{value}`"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    """One table row per key, nested sections expanded in place."""
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _model_of(field.annotation)
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        if nested is not None:
            doc = (nested.__doc__ or "").strip().splitlines()[0]
            out.append(f"| `{key}` | section | | {doc} |")
            out += rows(nested, f"{key}.")
            continue
        out.append(f"| `{key}` | {_type(field.annotation)} | {_default(field)} | {meaning} |")
    return out


def render() -> str:
    """The configuration reference page."""
    from pneumobench.config.schema import ExperimentConfig

    return HEADER + "\n".join(rows(ExperimentConfig)) + "\n"


def index() -> str:
    """The README as the site's home page: its ``docs/`` links made relative to the site."""
    return (ROOT / "README.md").read_text().replace("](docs/", "](")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    pages = {TARGET: render(), INDEX: index()}
    stale = [p for p, text in pages.items() if not p.is_file() or p.read_text() != text]
    if args.check:
        for page in stale:
            print(f"{page} is out of date: run scripts/docs_pages.py", file=sys.stderr)
        return 1 if stale else 0
    for page, text in pages.items():
        page.write_text(text)
        print(f"-> {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
