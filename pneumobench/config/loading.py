"""Reading an experiment file: YAML (duplicate keys refused), ``--set`` overrides, validation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pneumobench.config.messages import format_validation_error
from pneumobench.config.schema import ExperimentConfig
from pneumobench.errors import ConfigError


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read, override (``dotted.key=value``) and validate a YAML experiment file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at position {exc.start}): "
            "save the file as UTF-8"
        ) from None
    try:
        raw = _load_yaml(text, path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: expected a mapping of keys (name, data, models, ...) at the top"
        )
    if overrides:  # a mistake in the file is the file's; one the overrides bring is theirs
        parse_config(copy.deepcopy(raw), origin=str(path))
        for item in overrides:
            apply_override(raw, item)
    origin = " ".join(f"--set {o}" for o in overrides or []) or str(path)
    config = parse_config(raw, origin=origin)
    config._source = path.resolve()
    return config


MAX_EXPANDED_NODES = 100_000  # a real experiment file expands to a few hundred


def _load_yaml(text: str, path: Path) -> object:
    """The file's document, refused before it is built when its aliases (``*name``) would
    expand it past ``MAX_EXPANDED_NODES`` nodes: a ten-line alias bomb (nine levels of nine
    aliases) would otherwise take minutes and gigabytes to validate."""
    loader = _UniqueKeyLoader(text)  # a SafeLoader subclass
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node, {})
        if expanded > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{path}: its YAML aliases (*name) expand to more than {MAX_EXPANDED_NODES:,} "
                "values; an experiment file needs a few hundred. Write the repeated sections out "
                "instead of nesting aliases."
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes ``node`` stands for with every alias expanded (computed once per node,
    so the count costs the file's size, not the expansion's)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once here instead of looping
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = min(size, 10 * MAX_EXPANDED_NODES)
    return memo[key]


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key written twice in one mapping is an error (the
    plain loader keeps the last one and silently drops the first section)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key '{key}' is written twice in one section (lines {seen[key]} and {line}); "
                    "keep one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_config(raw: dict[str, Any], origin: str = "<config>") -> ExperimentConfig:
    """Validate a config mapping; ``origin`` names it in errors."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin)) from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """``--set protocol.lr=0.01``: the value is parsed as YAML, so numbers and lists work."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected dotted.key=value, e.g. protocol.max_epochs=3")
    parts = key.strip().split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"--set {item!r}: '{where}' is not a section that holds keys")
        node = node.setdefault(part, {})
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    last = parts[-1]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = parsed
    elif isinstance(node, dict):
        node[last] = parsed
    else:
        raise ConfigError(f"--set {item!r}: '{'.'.join(parts[:-1])}' is not a section")
