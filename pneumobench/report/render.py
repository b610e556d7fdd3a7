"""The leaderboard as people read it, in two blocks, everywhere: a terminal table that fits 100
columns, Markdown, CSV and JSON, and the legend that says where every number is measured and
how sure it is.

1. **Discrimination** (what is ranked by default): read off each model's test curves.
2. **The deployed operating point**: the threshold chosen on validation, and the sensitivity and
   specificity it achieved on test, beside its target, flagged where the target did not hold.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from pneumobench.config.sections import OperatingPointsConfig
from pneumobench.evaluate.deployed import target_status
from pneumobench.evaluate.operating_points import RANKED, describe, ranked_name
from pneumobench.report.leaderboard import leaderboard_metric, normalize_metric
from pneumobench.report.rows import LeaderboardRow
from pneumobench.text import markdown_table
from pneumobench.tracking import schema as S

RANK, MODEL, VS_TOP, P_HOLM, GROUP = "#", "model", "vs top row", "p Holm", "grp"
HEADERS = {  # short column names that say where each number is measured
    S.ranked_name("recall"): "sens@spec",
    S.ranked_name("specificity"): "spec@sens",
    S.ranked_name("precision"): "prec@sens",
    S.ranked_name("f1"): "best F1",
    S.ranked_name("accuracy"): "acc@argmax",
    S.ranked_name("roc_auc"): "roc_auc",
    S.ranked_name("pr_auc"): "pr_auc",
    S.ranked_name("recall@spec"): "recall@spec",
    S.ranked_name("specificity@sens"): "specificity@sens",
    S.ranked_name("precision@sens"): "precision@sens",
    S.ranked_name("f1@maxF1"): "f1@maxF1",
    S.ranked_name("accuracy@maxAcc"): "accuracy@maxAcc",
    S.N_TEST_EVALUATIONS: "test evals",
}
DEPLOYED = S.DEPLOYED_POINT
DEPLOYED_COLUMNS = ("recall", "specificity", "precision", "npv", "f1", "accuracy")
DEPLOYED_NAMES = {"recall": "sensitivity", "precision": "PPV", "npv": "NPV"}


def _header(column: str) -> str:
    name = column.removeprefix(S.TEST_PREFIX)
    return HEADERS.get(name, HEADERS.get(column, name))


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return "" if value is None else str(value)


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _with_interval(row: LeaderboardRow, key: str, seeds: bool = True) -> str:
    """``value [low, high]``; the mean over seeds (with its own interval) where there are."""
    m = row.metrics
    low, high = (m.get(name) for name in S.ci_names(key))
    text = _fmt(m.get(key))
    mean, _ = S.seed_names(key)
    if seeds and mean in m and row.n_seeds > 1:
        low, high = (m.get(name) for name in S.ci_names(mean))
        text = _fmt(m[mean])
    return f"{text} [{_fmt(low)}, {_fmt(high)}]" if low is not None else text


DEPLOYED_MARK = "▶"  # the row the registry's champion alias points at, when not the top row


def _label(row: LeaderboardRow) -> str:
    label = f"{row.model} ({row.n_seeds} seeds)" if row.n_seeds > 1 else row.model
    if row.deployed and not row.champion:  # the alias points at one run: one such row at most
        label = f"{DEPLOYED_MARK} {label} (deployed)"
    return label


# --- block 1: the ranking --------------------------------------------------------------------


def _ranking_columns(key: str, wide: bool) -> list[str]:
    if not wide:
        return [RANK, MODEL, key, VS_TOP, P_HOLM, GROUP]
    others = [S.test_metric(ranked_name(m)) for m in S.DISCRIMINATION]
    rest = [k for k in others if k != key]
    return [RANK, MODEL, key, VS_TOP, P_HOLM, GROUP, *rest, S.N_TEST_EVALUATIONS]


def _cell(row: LeaderboardRow, column: str, key: str) -> str:
    if not row.evaluated:
        return {RANK: "-", MODEL: row.model, key: str(row.status)}.get(column, "")
    cmp = row.comparison
    if column == key:
        return _with_interval(row, key) + (" (chance)" if row.below_chance else "")
    if column == MODEL:
        return _label(row)
    if column == GROUP:
        return row.group or ""
    if column == VS_TOP:
        if row.champion:
            return "top row"
        if cmp is None:
            return row.comparison_note or ""
        return (
            f"{cmp.vs_champion_diff:+.3f} [{cmp.vs_champion_ci_low:+.3f}, "
            f"{cmp.vs_champion_ci_high:+.3f}]"
        )
    if column == P_HOLM:
        return _p(cmp.p_holm) if cmp is not None else ""
    if column == RANK:
        return "" if row.rank is None else str(row.rank)
    if column == S.N_TEST_EVALUATIONS:  # a count
        value = row.metrics.get(column)
        return "" if value is None else str(int(value))
    return _with_interval(row, column)


def table_cells(
    rows: list[LeaderboardRow], key: str, wide: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Block 1's column headers and the text of every cell (table, Markdown, report); the last
    row is the chance reference where the ranked metric has one."""
    columns = _ranking_columns(key, wide)
    headers = [_header(c) if c == key or c.startswith(S.TEST_PREFIX) else c for c in columns]
    headers[2] += " [95% CI]"
    cells = [[_cell(row, c, key) for c in columns] for row in rows]
    chance = next((r.chance for r in rows if r.chance), None)
    if chance is not None:
        mean, low, high = chance
        reference = ["", "chance (random scorer)", f"{mean:.3f} [{low:.3f}, {high:.3f}]"]
        cells.append(reference + [""] * (len(columns) - 3))
    return headers, cells


# --- block 2: the deployed operating point ---------------------------------------------------


def deployed_status(row: LeaderboardRow, targets: OperatingPointsConfig) -> str | None:
    """``held``, ``below`` (the target did not hold on test), ``above``, or None."""
    key = S.test_metric(S.point_metric(DEPLOYED, "specificity"))
    low, high = (row.metrics.get(name, math.nan) for name in S.ci_names(key))
    return target_status(DEPLOYED, low, high, targets)


def deployed_cells(
    rows: list[LeaderboardRow], targets: OperatingPointsConfig, wide: bool = False
) -> tuple[list[str], list[list[str]]]:
    """Block 2: each model's validation-chosen deployed threshold and what it achieved on test,
    intervals including the threshold's own uncertainty, and whether its target held."""
    names = DEPLOYED_COLUMNS if wide else DEPLOYED_COLUMNS[:2]
    headers = [
        MODEL,
        "thr",
        *[f"{DEPLOYED_NAMES.get(n, n)} [95% CI]" for n in names],
        f"spec {targets.specificity:g}?",
    ]
    cells = []
    for row in rows:
        if not row.evaluated:
            continue
        threshold = row.metrics.get(S.threshold_name(DEPLOYED))
        status = deployed_status(row, targets)
        flag = {"below": "did not hold", "above": "exceeded", "held": "held"}.get(status or "", "")
        values = [
            _with_interval(row, S.test_metric(S.point_metric(DEPLOYED, n)), seeds=False)
            for n in names
        ]
        cells.append([row.model, _fmt(threshold), *values, flag])
    return headers, cells


EXTERNAL_COLUMNS = (  # (metric, header) of the external block
    ("roc_sens_at_spec", "sens@spec curve"),
    ("roc_auc", "ROC AUC"),
    (S.point_metric(DEPLOYED, "recall"), "deployed sens"),
    (S.point_metric(DEPLOYED, "specificity"), "deployed spec"),
    ("ece", "ECE"),
)


def external_names(rows: list[LeaderboardRow]) -> list[str]:
    """The external test sets any row was evaluated on, in first-seen order."""
    return list(dict.fromkeys(n for r in rows for n in r.external))


def external_cells(
    rows: list[LeaderboardRow], name: str, wide: bool = True
) -> tuple[list[str], list[list[str]]]:
    """Block 3 for one external set: each metric there [interval] and its shift from the
    internal test (external - internal [interval]); without ``wide`` three metrics, values and
    shifts only (100 columns)."""
    columns = EXTERNAL_COLUMNS if wide else EXTERNAL_COLUMNS[1:4]
    shown = "ext [95% CI] (shift [95% CI])" if wide else "ext (shift)"
    headers = [MODEL, *[f"{h} {shown}" for _, h in columns]]
    cells = []
    for row in rows:
        metrics = row.external.get(name)
        if metrics is None:
            continue
        cells.append([row.model, *[_external_cell(metrics, m, wide) for m, _ in columns]])
    return headers, cells


def _external_cell(metrics: dict[str, float], metric: str, wide: bool) -> str:
    value = metrics.get(S.test_metric(metric), math.nan)
    if not math.isfinite(value):
        return "n/a"
    shift = metrics.get(S.shift_metric(metric), math.nan)
    if not wide:
        return f"{value:.3f} ({shift:+.3f})"
    low, high = (metrics.get(k, math.nan) for k in S.ci_names(S.test_metric(metric)))
    s_low, s_high = (metrics.get(k, math.nan) for k in S.ci_names(S.shift_metric(metric)))
    return f"{value:.3f} [{low:.3f}, {high:.3f}] ({shift:+.3f} [{s_low:+.3f}, {s_high:+.3f}])"


def external_legend(name: str) -> str:
    """What block 3 shows."""
    return (
        f"External test set {name}: every model at the thresholds it deploys (chosen on "
        "validation, unchanged). ext: the value there; shift: external minus internal test. "
        "--wide (and the JSON) add their 95% intervals, the shift's from two independent "
        "bootstraps (shift_<metric>_ci_low/high). "
        "Each model's evaluation on it counts as one look at that set."
    )


# --- text --------------------------------------------------------------------------------------


def legend(key: str, rows: list[LeaderboardRow] | None = None) -> str:
    """How to read block 1, in one paragraph: what is ranked, how sure, what the groups say."""
    first = rows[0] if rows else None
    t = first.targets(OperatingPointsConfig()) if first else OperatingPointsConfig()
    unit = first.bootstrap_unit if first else S.BOOTSTRAP_IMAGE
    resampled = (
        "test patients resampled (stratified by class)"
        if unit == S.BOOTSTRAP_PATIENT
        else "test images resampled (no patient ids: each image its own patient)"
    )
    metric = leaderboard_metric(key)
    where = (
        "Block 1 (discrimination): no threshold carries over from validation, so no model "
        "climbs by moving one"
        if RANKED[metric][0] is None
        else "Ranked at thresholds chosen on validation: the rows are compared at different "
        "test specificities (see block 2), so a model that calls more images pneumonia on "
        "this test set can rank higher by it"
    )
    return (
        f"Ranked by {describe(metric, t.sensitivity, t.specificity)} (ties: roc_auc, pr_auc); "
        f"with seed repeats the mean over seeds. {where}. 95% bootstrap interval in brackets, "
        f"{resampled}. vs top row: paired difference in the ranked quantity on the same test "
        "images [paired bootstrap interval], Holm-adjusted p of the same bootstrap. Group A: "
        "not shown to differ from the top row (Holm, alpha as configured); B: worse. The top "
        "row is itself selected on this test set: its numbers are optimistic. chance: what a "
        "random scorer reaches on these test labels; a row marked (chance) does not clear it."
        + _deployed_note(rows or [])
    )


def _deployed_note(rows: list[LeaderboardRow]) -> str:
    deployed = next((r for r in rows if r.deployed), None)
    if deployed is None or deployed.champion:
        return ""
    return (
        f" {DEPLOYED_MARK} (deployed): the registry's champion alias, what predict, export and "
        f"serving use, is {deployed.model}: the top row has no registered model."
    )


def deployed_legend(targets: OperatingPointsConfig) -> str:
    """How to read block 2."""
    return (
        f"Block 2 (the deployed operating point): the threshold predict, export and serving "
        f"decide at, chosen on validation to reach specificity {targets.specificity:g}, applied "
        "once to test. Intervals include the threshold's own uncertainty (validation patients "
        "resampled and the threshold re-chosen in every round). 'did not hold': the whole "
        "specificity interval lies below the target, a shift between validation and test."
    )


def store_notes(rows: list[LeaderboardRow], looks: tuple[int, int] | None) -> list[str]:
    """What the reader must know about the data behind the table: how often its test set has
    been looked at in this store, and what validation is."""
    notes = []
    first = next((r for r in rows if r.evaluated), None)
    if looks and looks[0]:
        digest = first.test_digest if first else ""
        notes.append(
            f"This test set (content digest {digest}) has been evaluated {looks[0]} time(s) in "
            f"this store, in {looks[1]} experiment(s): every look is counted, and each one "
            "spends some of its independence."
        )
    note = next((r.validation_note for r in rows if r.validation_note), None)
    if note:
        notes.append(f"Validation: {note}.")
    deployed = next((r for r in rows if r.deployed), None)
    if deployed is not None:
        notes.append(
            f"Deployed: the registry's champion alias (what predict, export and serving use) is "
            f"{deployed.model}" + (", the top row." if deployed.champion else ", not the top row.")
        )
    for row in rows:
        if not row.evaluated:
            notes.append(f"{row.model} ({row.status}): {row.fail_reason or 'no reason recorded'}")
    return notes


def render(
    rows: list[LeaderboardRow],
    fmt: str,
    metric: str,
    targets: OperatingPointsConfig | None = None,
    notes: list[str] | None = None,
) -> str:
    """The leaderboard as ``json``, ``csv`` or ``markdown`` text (``table`` is :func:`rich_table`)."""
    key = normalize_metric(metric)
    targets = targets or OperatingPointsConfig()
    records = []
    for row in rows:
        record = row.as_dict()
        record["deployed_target_status"] = deployed_status(row, targets) if row.evaluated else None
        records.append(record)
    if fmt == "json":
        return json.dumps(records, indent=2, default=str)
    if fmt == "csv":
        columns = ["rank", "model", key, *S.ci_names(key)]  # the records' keys
        fields = [
            *columns,
            "vs_champion_diff",
            "vs_champion_ci_low",
            "vs_champion_ci_high",
            "p_holm",
            "significantly_worse",
            "group",
            *[k for k in (S.test_metric(ranked_name(m)) for m in S.DISCRIMINATION) if k != key],
            S.threshold_name(DEPLOYED),
            *[S.test_metric(S.point_metric(DEPLOYED, n)) for n in DEPLOYED_COLUMNS],
            "deployed_target_status",
            "below_chance",
            "status",
            "run_id",
            "champion",
        ]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    if fmt == "markdown":
        headers, table = table_cells(rows, key, wide=True)
        for row, cells in zip(rows, table, strict=False):
            if row.champion:
                cells[1] = f"**{cells[1]}**"
        d_headers, d_cells = deployed_cells(rows, targets, wide=True)
        parts = [
            markdown_table(headers, table),
            legend(key, rows),
            markdown_table(d_headers, d_cells),
            deployed_legend(targets),
        ]
        for name in external_names(rows):
            parts += [markdown_table(*external_cells(rows, name)), external_legend(name)]
        parts += notes or []
        return "\n\n".join(parts)
    raise ValueError(fmt)


def rich_table(
    rows: list[LeaderboardRow],
    metric: str,
    title: str,
    targets: OperatingPointsConfig | None = None,
    notes: list[str] | None = None,
    wide: bool = False,
) -> Any:
    """Both blocks for the terminal: the ranking (top row starred, group B dimmed, no cell
    wrapped at 100 columns unless ``wide``) and the deployed operating point."""
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    key = normalize_metric(metric)
    targets = targets or OperatingPointsConfig()
    headers, cells = table_cells(rows, key, wide)
    compact = {"box": box.SIMPLE_HEAD, "pad_edge": False, "collapse_padding": True}
    ranking = Table(title=f"{title}: {escape(_header(key))} on test", **compact)
    for i, h in enumerate(headers):
        ranking.add_column(h, justify="left" if i in (1, 3) else "right", no_wrap=not wide)
    for i, row_cells in enumerate(cells):
        row = rows[i] if i < len(rows) else None
        style = "dim italic" if row is None else None
        if row is not None and row.champion:
            row_cells[1] = f"★ {row_cells[1]}"
            style = "bold green"
        elif row is not None and not row.evaluated:
            style = "red"
        elif row is not None and (row.significantly_worse or row.below_chance):
            style = "dim"
        ranking.add_row(*[escape(c) for c in row_cells], style=style)
    d_headers, d_cells = deployed_cells(rows, targets, wide)
    deployed = Table(
        title="the deployed operating point (threshold chosen on validation)", **compact
    )
    for i, h in enumerate(d_headers):
        deployed.add_column(h, justify="left" if i == 0 else "right", no_wrap=not wide)
    for row_cells in d_cells:
        style = "bold red" if row_cells[-1] == "did not hold" else None
        deployed.add_row(*[escape(c) for c in row_cells], style=style)
    blocks = [ranking, deployed]
    for name in external_names(rows):
        e_headers, e_cells = external_cells(rows, name, wide)
        table = Table(title=f"external test set {escape(name)} (deployed thresholds)", **compact)
        for i, h in enumerate(e_headers):
            table.add_column(h, justify="left" if i == 0 else "right", no_wrap=not wide)
        for row_cells in e_cells:
            table.add_row(*[escape(c) for c in row_cells])
        blocks.append(table)
    texts = [legend(key, rows), deployed_legend(targets)]
    texts += [external_legend(n) for n in external_names(rows)] + (notes or [])
    return Group(*blocks, *[Text(t, style="dim") for t in texts])
