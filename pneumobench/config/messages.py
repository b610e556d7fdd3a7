"""pydantic's validation errors as the messages a user reads: one line per problem, its dotted
location, and the closest valid key."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pneumobench.config.schema import ExperimentConfig
from pneumobench.text import did_you_mean


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models_in(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [m for a in get_args(annotation) for m in _models_in(a)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _step(annotation: Any, part: Any) -> tuple[Any, bool]:
    """Move one location element down the schema. Returns (annotation, shown_in_path)."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _step(args[0], part)
    if origin in (list, tuple) and isinstance(part, int):
        return args[0], True
    if origin is dict:
        return args[1], True
    if origin in (Union, types.UnionType):
        for model in _models_in(annotation):
            tag = model.model_fields.get("type")
            if part == model.__name__ or (tag is not None and get_args(tag.annotation) == (part,)):
                return model, False
        for model in _models_in(annotation):
            if part in model.model_fields:
                return model.model_fields[part].annotation, True
        return None, True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part)
        return (field.annotation if field else None), True
    return None, True


def _locate(loc: tuple[Any, ...]) -> tuple[str, list[str]]:
    """The dotted path of a location, and the keys valid at its parent (for 'did you mean')."""
    annotation: Any = ExperimentConfig
    shown: list[str] = []
    parent_keys: list[str] = []
    for part in loc:
        parent_keys = sorted({f for m in _models_in(annotation) for f in m.model_fields})
        annotation, visible = _step(annotation, part) if annotation is not None else (None, True)
        if visible:
            shown.append(f"[{part}]" if isinstance(part, int) else str(part))
    path = ".".join(shown).replace(".[", "[")
    return path or "(top level)", parent_keys


def format_validation_error(exc: ValidationError, origin: str) -> str:
    """pydantic's errors as one line per problem: dotted location, message, closest valid key."""
    lines = []
    seen: set[str] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        path, keys = _locate(loc)
        if err["type"] == "extra_forbidden":
            bad = loc[-1]
            message = f"unknown key '{bad}'{did_you_mean(bad, keys)}"
            if keys:
                message += f"; valid keys here: {', '.join(keys)}"
        elif err["type"] == "missing":
            message = "required key is missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
            if "input" in err and err["type"] not in ("value_error", "assertion_error"):
                message += f" (got {err['input']!r})"
        line = f"  - {message}" if path == "(top level)" else f"  - {path}: {message}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    count = len(lines)
    head = f"{origin}: {count} problem{'s' if count > 1 else ''} in the configuration"
    return "\n".join([head, *lines])
