"""Your own models in the race: plugin files, importable modules, installed packages.

Three ways in, one mechanism: importing the plugin runs its ``@register_model`` decorators, which
add entries to the registry, each remembering where it came from (``Architecture.origin``):

- ``plugins: [my_models.py]`` in a config: a Python file, relative to the config's folder;
- ``plugins: [mypkg.models]``: an importable module (on ``PYTHONPATH`` or installed);
- an installed distribution declaring the entry-point group ``pneumobench.models``
  (``[project.entry-points."pneumobench.models"] my_cnns = "mypkg.models"``), loaded by every
  command without any config.

A plugin that fails to import, or that registers a name already taken, is a ``PluginError``
naming the file and line; nothing of a failed plugin stays registered. Loading the same plugin
again is a no-op, so a resumed run or a second command in one process behaves the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from pneumobench.errors import ConfigError
from pneumobench.registry import table
from pneumobench.registry.builtin import ensure_builtins

ENTRY_POINT_GROUP = "pneumobench.models"


class PluginError(ConfigError):
    """A plugin that cannot be loaded: which one, which file and line, and why."""


_loaded: dict[str, str] = {}  # plugin key (resolved file or module name) -> origin text


def load_plugins(specs: list[str], base: Path | None = None) -> list[str]:
    """Import each plugin of a config's ``plugins:`` (files relative to ``base``); their origins.
    Installed plugin packages (entry points) are loaded first, new ones included."""
    load_entry_points()
    origins = []
    for i, spec in enumerate(specs):
        where = f"plugins[{i}] ({spec})"
        if spec.endswith(".py") or "/" in spec or "\\" in spec:
            path = Path(spec).expanduser()
            if not path.is_absolute():
                path = (base or Path.cwd()) / path
            origins.append(_load_file(path.resolve(), where))
        else:
            origins.append(_load_module(spec, where))
    return origins


def load_entry_points() -> list[str]:
    """Import every installed ``pneumobench.models`` entry point not loaded yet (pneumobench's own
    families first); their origins."""
    ensure_builtins()
    origins = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry.dist.name if entry.dist is not None else "?"
        key = f"entry-point:{dist}:{entry.name}"
        if key in _loaded:
            continue
        origin = f"entry point {entry.name} = {entry.value} (package {dist})"
        with _registering(key, origin, f"entry point '{entry.name}' of package {dist}"):
            loaded = entry.load()
            if callable(loaded) and not isinstance(loaded, type(sys)):
                loaded()  # "mypkg.models:register": a function that registers
        origins.append(origin)
    return origins


def loaded_plugins() -> dict[str, str]:
    """Every plugin loaded in this process: key -> origin."""
    return dict(_loaded)


def _load_file(path: Path, where: str) -> str:
    key = str(path)
    if key in _loaded:
        return _loaded[key]
    if not path.is_file():
        raise PluginError(f"{where}: no such file {path} (plugin files are relative to the config)")
    name = f"pneumobench_plugin_{path.stem}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    origin = f"file {path}"
    with _registering(key, origin, where):
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look modules up by name
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    return origin


def _load_module(name: str, where: str) -> str:
    if name in _loaded:
        return _loaded[name]
    origin = f"module {name}"
    with _registering(name, origin, where) as origins:
        module = importlib.import_module(name)
        origin = f"module {name} ({getattr(module, '__file__', '?')})"
        origins[-1] = origin
    _loaded[name] = origin
    return origin


@contextlib.contextmanager
def _registering(key: str, origin: str, where: str) -> Iterator[list[str]]:
    """Entries registered inside are tagged with ``origin``; on any failure they are removed
    again and the failure becomes a PluginError with the plugin's file and line."""
    ensure_builtins()
    before = set(table.registered_names())
    with table.registering_from(origin) as origins:
        try:
            yield origins
        except PluginError:
            table.unregister(set(table.registered_names()) - before)
            raise
        except Exception as exc:
            table.unregister(set(table.registered_names()) - before)
            raise PluginError(f"{where}: {_located(exc)}") from None
    _loaded[key] = origin


def _located(exc: BaseException) -> str:
    """``file:line: Type: message`` of the innermost frame outside pneumobench and importlib."""
    if isinstance(exc, SyntaxError):
        return f"{exc.filename}:{exc.lineno}: SyntaxError: {exc.msg}"
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "importlib" not in f.filename and "/pneumobench/registry/" not in f.filename
    ]
    place = f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{place}{type(exc).__name__}: {message}"
