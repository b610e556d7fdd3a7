"""The package's layout rules, checked: the house by stage (scripts/structure.py), who may talk
to MLflow, which modules must stand alone."""

from __future__ import annotations

import ast
from pathlib import Path

from pneumobench.data.sources import SOURCES, get_source

ROOT = Path(__file__).resolve().parent.parent

PACKAGE = ROOT / "pneumobench"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_house_rules_hold() -> None:
    """No import cycle between modules or stages, no stage over 25% of the code, no function
    over 60 lines, no module over 450, no MLflow name spelt outside tracking/, no evaluation
    default outside config/ (``scripts/structure.py`` prints the figures)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("structure", ROOT / "scripts" / "structure.py")
    assert spec is not None and spec.loader is not None
    structure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(structure)
    figures = structure.figures()
    assert structure.broken_rules(figures) == []
    assert figures["module_cycles"] == [] and figures["stage_cycles"] == []


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself can fail: a two-module cycle is found, a one-way graph is clean."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("structure", ROOT / "scripts" / "structure.py")
    assert spec is not None and spec.loader is not None
    structure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(structure)
    assert structure.cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert structure.cycles({"a": {"b"}, "b": set()}) == []


def test_the_config_and_the_data_stage_name_the_same_sources() -> None:
    """A data source is its module plus one line in each table (what it serves: the config)."""
    from pneumobench.config.fields import SOURCE_TASKS

    assert set(SOURCES) == set(SOURCE_TASKS)
    for name in SOURCES:
        assert get_source(name).tasks == SOURCE_TASKS[name]


def test_only_the_tracking_package_imports_mlflow() -> None:
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "mlflow" in _imports(p) and p.parent.name != "tracking"
    ]
    assert offenders == []


def test_pixels_module_is_standalone() -> None:
    """pixels.py ships with every pyfunc model and runs where pneumobench is not installed."""
    imports = _imports(PACKAGE / "data" / "pixels.py")
    assert "pneumobench" not in imports
    assert imports <= {"__future__", "io", "warnings", "pathlib", "numpy", "PIL", "pydicom"}


def test_the_pyfunc_model_code_needs_no_pneumobench() -> None:
    imports = _imports(PACKAGE / "tracking" / "pyfunc_model.py")
    assert "pneumobench" not in imports


def test_generated_docs_pages_match_their_sources_and_the_readme_fits_a_screen() -> None:
    """docs/configuration.md is the schema, docs/index.md the README; the README stays short."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "docs_pages.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 12 * 1024
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [
        line
        for line in quickstart.split("```bash", 1)[1].split("```", 1)[0].splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(commands) == 2 and commands[1].endswith("uv run --frozen pytest")
