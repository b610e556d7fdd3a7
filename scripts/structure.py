"""Print the package's structure figures and check them against the house rules.

The rules (issue "The house by stage"): no stage package holds more than 25% of the package's
lines; no import cycle between modules or between stage packages; no MLflow name literal outside
``tracking/``; the evaluation defaults spelt only in the config schema; no function over 60 lines;
no module over 450 lines. ``--json`` prints the figures as JSON; the exit code is 1 when a rule
is broken, so CI and ``tests/test_architecture.py`` can hold them.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pneumobench"
MAX_SHARE, MAX_FUNCTION_LINES, MAX_MODULE_LINES = 0.25, 60, 450


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every pneumobench module ``name`` imports, at any depth of its code (lazy imports count)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from package import submodule`` depends on the submodule, not on the package's
            # __init__ (which Python runs first anyway for every submodule)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("pneumobench"):
                found.add(target)
    return found


def stage(module: str) -> str:
    """The stage a module belongs to: its first folder under pneumobench/ (or the module)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def long_functions(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return out


def string_literals(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
    return out


NOT_MLFLOW = "# not an MLflow name"  # a line that spells the same word for something else


def mlflow_name_literals(known: dict[str, Path]) -> list[str]:
    """Literals outside tracking/ that equal an MLflow name declared in tracking/schema.py.

    Names that are one plain word (``model``, ``seed``, ``precision``) are also ordinary words,
    config keys and metric base names; they are left out, and so are file names. Every name with
    a separator (``test_at_spec_recall``, ``data.patients_checked``, ``pneumobench.label``) and
    every prefix (``val_``) counts."""
    sys.path.insert(0, str(ROOT))
    from pneumobench.tracking import schema

    names = {n for n in schema.all_names() if any(c in n for c in "._") and "/" not in n}
    offenders = []
    for name, path in known.items():
        if stage(name) == "tracking":
            continue
        lines = path.read_text().splitlines()
        for line, value in string_literals(path):
            if value in names and NOT_MLFLOW not in lines[line - 1]:
                offenders.append(f"{path.relative_to(ROOT)}:{line} {value!r}")
    return offenders


EVALUATION_DEFAULTS = (2000, 0.05, 0.95, 0.9)  # resamples, alpha, ci level / sensitivity, spec.


def _evaluation_word(name: str) -> bool:
    return any(w in name for w in ("resample", "alpha", "level", "sensitiv", "specific", "target"))


def _defaults_and_keywords(node: ast.AST) -> list[tuple[object, int]]:
    """Constants a default can hide in: parameter defaults, keyword arguments, ``x or 0.95``."""
    found: list[tuple[object, int]] = []
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        pairs = list(
            zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
        )
        pairs += [
            (a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
        ]
        for arg, default in pairs:
            if isinstance(default, ast.Constant) and _evaluation_word(arg.arg):
                found.append((default.value, default.lineno))
    elif isinstance(node, ast.Call):
        found += [
            (k.value.value, k.lineno)
            for k in node.keywords
            if isinstance(k.value, ast.Constant) and _evaluation_word(k.arg or "")
        ]
    elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
        found += [(v.value, v.lineno) for v in node.values if isinstance(v, ast.Constant)]
    return found


def default_literals(known: dict[str, Path]) -> list[str]:
    """Evaluation defaults (2000 resamples, alpha 0.05, targets 0.95 / 0.90) outside the config
    schema: as parameter defaults, keyword arguments or ``or`` fallbacks."""
    offenders = []
    for name, path in known.items():
        if name.startswith("pneumobench.config"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            for value, where in _defaults_and_keywords(node):
                if type(value) in (int, float) and value in EVALUATION_DEFAULTS:
                    offenders.append(f"{path.relative_to(ROOT)}:{where} {value!r}")
    return offenders


def figures() -> dict:
    known = modules()
    lines = {name: len(path.read_text().splitlines()) for name, path in known.items()}
    total = sum(lines.values())
    per_stage: dict[str, int] = defaultdict(int)
    for name, count in lines.items():
        per_stage[stage(name)] += count
    graph = {name: imported_modules(name, path, known) for name, path in known.items()}
    stage_graph: dict[str, set[str]] = defaultdict(set)
    for name, targets in graph.items():
        for target in targets:
            if stage(target) != stage(name):
                stage_graph[stage(name)].add(stage(target))
    return {
        "total_lines": total,
        "stages": {
            s: {"lines": n, "share": round(n / total, 3)}
            for s, n in sorted(per_stage.items(), key=lambda kv: -kv[1])
        },
        "stage_imports": {s: sorted(t) for s, t in sorted(stage_graph.items())},
        "module_cycles": cycles(graph),
        "stage_cycles": cycles(dict(stage_graph)),
        "long_functions": [f for p in known.values() for f in long_functions(p)],
        "long_modules": sorted(
            f"{known[n].relative_to(ROOT)} ({c} lines)"
            for n, c in lines.items()
            if c > MAX_MODULE_LINES
        ),
        "mlflow_name_literals": mlflow_name_literals(known),
        "default_literals": default_literals(known),
    }


def broken_rules(fig: dict) -> list[str]:
    broken = [
        f"stage {s} holds {v['share']:.0%} of the lines (max {MAX_SHARE:.0%})"
        for s, v in fig["stages"].items()
        if v["share"] > MAX_SHARE
    ]
    for key in (
        "module_cycles",
        "stage_cycles",
        "long_functions",
        "long_modules",
        "mlflow_name_literals",
        "default_literals",
    ):
        broken += [f"{key}: {item}" for item in fig[key]]
    return broken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    fig = figures()
    broken = broken_rules(fig)
    if args.json:
        print(json.dumps({**fig, "broken": broken}, indent=2))
        return 1 if broken else 0
    print(f"pneumobench: {fig['total_lines']} lines in {len(modules())} modules")
    for s, v in fig["stages"].items():
        imports = ", ".join(fig["stage_imports"].get(s, [])) or "-"
        print(f"  {s:<14} {v['lines']:>5} lines {v['share']:>6.1%}   imports: {imports}")
    print(f"module cycles: {len(fig['module_cycles'])}   stage cycles: {len(fig['stage_cycles'])}")
    print(
        f"functions over {MAX_FUNCTION_LINES} lines: {len(fig['long_functions'])}   "
        f"modules over {MAX_MODULE_LINES} lines: {len(fig['long_modules'])}"
    )
    print(
        f"MLflow name literals outside tracking/: {len(fig['mlflow_name_literals'])}   "
        f"evaluation defaults outside config/: {len(fig['default_literals'])}"
    )
    for line in broken:
        print(f"  BROKEN {line}")
    print("all rules hold" if not broken else f"{len(broken)} rule violations")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
