"""``pneumobench report``: the whole comparison in one file to send to a colleague.

Everything is read back from MLflow (runs, metric histories, the logged test predictions) and the
Optuna storage (studies), so a report can be made at any time, from any machine that reaches both.
The HTML file embeds its figures and opens offline; the Markdown variant writes them beside it.
"""

from __future__ import annotations

import base64
import html
import io
import math
import platform
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pneumobench import __version__
from pneumobench.benchmark import tracking as T
from pneumobench.benchmark.leaderboard import (
    legend,
    load_leaderboard,
    normalize_metric,
    read_predictions,
    table_cells,
)

SUMMARY_ROLE = "summary"


@dataclass
class Figure:
    name: str  # file stem, also the kind of plot
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Report:
    experiment: str
    metric: str
    tracking_uri: str
    headers: list[str]
    cells: list[list[str]]
    legend: str
    data_rows: list[dict[str, str]]
    environment: dict[str, str]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def build_report(
    experiment: str,
    tracking_uri: str,
    storage: str | None,
    metric: str = "recall",
    n_resamples: int = 1000,
) -> Report:
    import matplotlib

    matplotlib.use("Agg")
    import mlflow

    key = normalize_metric(metric)
    rows = load_leaderboard(experiment, metric, tracking_uri, n_resamples=n_resamples)
    client = mlflow.MlflowClient(tracking_uri)
    headers, cells = table_cells(rows, key)
    evaluated = [r for r in rows if r["status"] == "evaluated"]
    runs = {r["model"]: client.get_run(r["run_id"]) for r in rows}
    report = Report(
        experiment=experiment,
        metric=key,
        tracking_uri=tracking_uri,
        headers=headers,
        cells=cells,
        legend=legend(key),
        data_rows=_data_rows(runs),
        environment=_environment(runs),
        models=[r["model"] for r in rows],
    )
    predictions = {}
    for row in evaluated:
        _, y, probs = read_predictions(client, row["run_id"])
        predictions[row["model"]] = (y, probs)
    class_names = _class_names(runs, predictions)
    if predictions:
        report.figures.append(_roc_pr(predictions, class_names))
        report.figures.append(_confusion_grid(predictions, class_names))
    curves = _validation_curves(client, runs)
    if curves is not None:
        report.figures.append(curves)
    if storage:
        for label, run in runs.items():
            report.figures.extend(_study_figures(label, run, storage, report.notes))
    else:
        report.notes.append("no Optuna storage given: optimization histories left out")
    return report


# --- sections ---------------------------------------------------------------------------------


def _data_rows(runs: dict[str, Any]) -> list[dict[str, str]]:
    """One row per split from the first model's logged data summary (all share the split)."""
    if not runs:
        return []
    params = next(iter(runs.values())).data.params
    tags = next(iter(runs.values())).data.tags
    rows = []
    for split in ("train", "val", "test"):
        if f"data.n_{split}" not in params:
            continue
        classes = {
            k.removeprefix(f"data.n_{split}_"): v
            for k, v in sorted(params.items())
            if k.startswith(f"data.n_{split}_")
        }
        rows.append(
            {
                "split": split,
                "images": params[f"data.n_{split}"],
                "patients": params.get(f"data.patients_{split}", ""),
                **classes,
                "image size": f"{tags.get('image_size', '?')} px",
                "source": tags.get("data_source", ""),
            }
        )
    return rows


def _environment(runs: dict[str, Any]) -> dict[str, str]:
    import mlflow
    import optuna
    import torch

    env: dict[str, str] = {}
    if runs:
        tags = next(iter(runs.values())).data.tags
        for key in (
            "versions",
            "device",
            "git_commit",
            "pneumobench_version",
            "dataset_digest",
            "seed",
            "task",
        ):
            if key in tags:
                env[f"runs: {key.replace('_', ' ')}"] = tags[key]
    env["report made"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    env["report made with"] = (
        f"pneumobench {__version__}, python {platform.python_version()}, torch "
        f"{torch.__version__}, mlflow {mlflow.__version__}, optuna {optuna.__version__}"
    )
    return env


def _class_names(runs: dict[str, Any], predictions: dict) -> list[str]:
    for run in runs.values():
        names = run.data.tags.get("class_names")
        if names:
            return names.split(",")
    k = next(iter(predictions.values()))[1].shape[1] if predictions else 2
    return ["NORMAL", "PNEUMONIA"] if k == 2 else [f"class {i}" for i in range(k)]


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _pneumonia_score(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Binary: P(pneumonia). Multiclass: 1 - P(normal), the clinical question (any pneumonia)."""
    if probs.shape[1] == 2:
        return (y == 1).astype(int), probs[:, 1]
    return (y != 0).astype(int), 1.0 - probs[:, 0]


def _roc_pr(predictions: dict, class_names: list[str]) -> Figure:
    import matplotlib.pyplot as plt
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.8))
    for label, (y, probs) in predictions.items():
        truth, score = _pneumonia_score(y, probs)
        fpr, tpr, _ = roc_curve(truth, score)
        roc_ax.plot(fpr, tpr, lw=1.6, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
        precision, recall, _ = precision_recall_curve(truth, score)
        ap = average_precision_score(truth, score)
        pr_ax.step(recall, precision, where="post", lw=1.6, label=f"{label} (AP {ap:.3f})")
    roc_ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    roc_ax.set(xlabel="1 - specificity", ylabel="recall (sensitivity)", title="ROC, test set")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, test set")
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="lower right" if ax is roc_ax else "lower left", fontsize=8)
        ax.grid(alpha=0.3)
    positive = "pneumonia" if len(class_names) == 2 else "any pneumonia (1 - P(normal))"
    return Figure(
        "roc_pr",
        "ROC and precision-recall curves, all models",
        _png(fig),
        f"Positive class: {positive}. Each final model's test predictions.",
    )


def _confusion_grid(predictions: dict, class_names: list[str]) -> Figure:
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(predictions)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax, (label, (y, probs)) in zip(axes.flat, predictions.items(), strict=False):
        ConfusionMatrixDisplay.from_predictions(
            y,
            probs.argmax(1),
            labels=list(range(probs.shape[1])),
            display_labels=class_names[: probs.shape[1]],
            ax=ax,
            colorbar=False,
        )
        ax.set_title(label, fontsize=10)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return Figure(
        "confusion_matrices", "Confusion matrices, test set (threshold: argmax)", _png(fig)
    )


def _validation_curves(client: Any, runs: dict[str, Any]) -> Figure | None:
    """Per model, the best trial's per-epoch losses and validation objective."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    series = {}
    for label, run in runs.items():
        best = run.data.tags.get("best_trial")
        if best is None:
            continue
        trials = client.search_runs(
            [run.info.experiment_id],
            filter_string=(
                f"tags.`{T.ROLE}` = 'trial' and tags.`{T.LABEL}` = '{label}' "
                f"and tags.`{T.TRIAL_NUMBER}` = '{best}'"
            ),
            max_results=1,
        )
        if not trials:
            continue
        objective = run.data.params.get("search.objective", "val_f1")
        trial_id = trials[0].info.run_id
        series[label] = {
            name: [(m.step, m.value) for m in client.get_metric_history(trial_id, name)]
            for name in ("train_loss", "val_loss", objective)
        }
        series[label]["_objective"] = objective  # type: ignore[assignment]
        series[label]["_trial"] = best  # type: ignore[assignment]
    if not series:
        return None
    n = len(series)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.2 * rows), squeeze=False)
    for ax, (label, s) in zip(axes.flat, series.items(), strict=False):
        objective = s.pop("_objective")
        trial = s.pop("_trial")
        for name, style in (("train_loss", "-"), ("val_loss", "--")):
            if s.get(name):
                steps, values = zip(*sorted(s[name]), strict=True)
                ax.plot(steps, values, style, label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{label} (trial {trial})", fontsize=10)
        if s.get(objective):
            twin = ax.twinx()
            steps, values = zip(*sorted(s[objective]), strict=True)
            twin.plot(steps, values, "g.-", label=objective)
            twin.set_ylabel(objective, color="g")
        ax.legend(fontsize=7, loc="upper right")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return Figure(
        "validation_curves",
        "Training curves of each model's best trial",
        _png(fig),
        "Losses (left axis) and the validation objective (right axis, green) per epoch.",
    )


def _study_figures(label: str, run: Any, storage: str, notes: list[str]) -> list[Figure]:
    import warnings

    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    study_name = run.data.tags.get(T.STUDY)
    if not study_name:
        return []
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        notes.append(f"{label}: study '{study_name}' is not in the Optuna storage given")
        return []
    out = []
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's matplotlib plots are "experimental"
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            notes.append(f"{label}: no complete trial, no optimization history")
            return out
        ax = ovm.plot_optimization_history(study)
        _retitle(ax, f"{label}: optimization history")
        out.append(Figure(f"history_{safe}", f"{label}: optimization history", _png(ax.figure)))
        varied = {k for t in complete for k in t.params} if len(complete) >= 2 else set()
        if varied:
            try:
                ax = ovm.plot_param_importances(study)
                _retitle(ax, f"{label}: hyperparameter importances (fANOVA)")
                out.append(
                    Figure(
                        f"importances_{safe}",
                        f"{label}: hyperparameter importances",
                        _png(ax.figure),
                        f"fANOVA over {len(complete)} complete trials: with a few dozen trials or "
                        "fewer, read it as a hint, not a finding.",
                    )
                )
            except (RuntimeError, ValueError) as exc:
                notes.append(f"{label}: no hyperparameter importances ({exc})")
                plt.close("all")
        else:
            notes.append(f"{label}: fewer than 2 complete trials, no hyperparameter importances")
    return out


def _retitle(ax: Any, title: str) -> None:
    for loc in ("left", "center", "right"):
        ax.set_title("", loc=loc)
    ax.set_title(title, loc="left", fontsize=11)


# --- writers ----------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#1d2330;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #d5d9e0;padding:.25rem .5rem;text-align:right}
th{background:#f2f4f7}td:nth-child(2),td:nth-child(4){text-align:left}
tr.champion{background:#e8f6ea;font-weight:600}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eee}
figure.half{display:inline-block;width:49%;margin:.5rem 0;vertical-align:top}
figcaption,.legend,.note{color:#555;font-size:.85rem}
"""


def to_html(report: Report) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>pneumobench report: {e(report.experiment)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>pneumobench report: {e(report.experiment)}</h1>",
        f'<p class="note">Ranked by {e(report.metric)} on the held-out test set. Tracking: '
        f"<code>{e(report.tracking_uri)}</code>.</p>",
        "<h2>Leaderboard</h2>",
        _html_table(report.headers, report.cells, champion_first=True),
        f'<p class="legend">{e(report.legend)}</p>',
        "<h2>Data</h2>",
        _html_table(*_dict_rows(report.data_rows))
        if report.data_rows
        else "<p>no data summary</p>",
    ]
    current_section = None
    for fig in report.figures:
        section = _section(fig.name)
        if section != current_section:
            parts.append(f"<h2>{e(section)}</h2>")
            current_section = section
        data = base64.b64encode(fig.png).decode()
        half = ' class="half"' if section == "Hyperparameter search" else ""
        parts.append(
            f'<figure{half} data-plot="{e(fig.name)}"><img alt="{e(fig.title)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{e(fig.title)}'
            + (f". {e(fig.caption)}" if fig.caption else "")
            + "</figcaption></figure>"
        )
    parts.append("<h2>Environment</h2>")
    parts.append(_html_table(["", ""], [[k, v] for k, v in report.environment.items()]))
    if report.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts.extend(f"<li>{e(n)}</li>" for n in report.notes)
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _section(plot: str) -> str:
    if plot.startswith(("history_", "importances_")):
        return "Hyperparameter search"
    return {
        "roc_pr": "ROC and precision-recall",
        "confusion_matrices": "Confusion matrices",
        "validation_curves": "Training curves",
    }.get(plot, "Figures")


def _dict_rows(rows: list[dict[str, str]]) -> tuple[list[str], list[list[str]]]:
    headers = list(dict.fromkeys(k for row in rows for k in row))
    return headers, [[str(row.get(h, "")) for h in headers] for row in rows]


def _html_table(headers: list[str], cells: list[list[str]], champion_first: bool = False) -> str:
    e = html.escape
    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for i, row in enumerate(cells):
        css = ' class="champion"' if champion_first and i == 0 and row and row[0] == "1" else ""
        out.append(f"<tr{css}>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def to_markdown(report: Report, image_dir: Path, link_prefix: str) -> str:
    """Markdown for a README: figures written as PNG files into ``image_dir``."""
    image_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# pneumobench report: {report.experiment}",
        "",
        f"Ranked by {report.metric} on the held-out test set.",
        "",
        _md_table(report.headers, report.cells),
        "",
        report.legend,
        "",
        "## Data",
        "",
    ]
    if report.data_rows:
        lines.append(_md_table(*_dict_rows(report.data_rows)))
    for fig in report.figures:
        (image_dir / f"{fig.name}.png").write_bytes(fig.png)
        lines += ["", f"### {fig.title}", "", f"![{fig.title}]({link_prefix}{fig.name}.png)"]
        if fig.caption:
            lines += ["", fig.caption]
    lines += [
        "",
        "## Environment",
        "",
        _md_table(["", ""], [list(kv) for kv in report.environment.items()]),
    ]
    if report.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in report.notes)]
    return "\n".join(lines) + "\n"


def _md_table(headers: list[str], cells: list[list[str]]) -> str:
    def esc(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in cells]
    return "\n".join(lines)


def write_report(report: Report, out: Path) -> list[Path]:
    """Write HTML (``.html``) or Markdown (``.md``); the paths written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".md":
        image_dir = out.parent / f"{out.stem}_files"
        out.write_text(to_markdown(report, image_dir, f"{image_dir.name}/"))
        return [out, *sorted(image_dir.glob("*.png"))]
    out.write_text(to_html(report))
    return [out]


def log_to_mlflow(report: Report, paths: list[Path]) -> str:
    """Attach the report to the experiment's summary run (made once, reused); its run id."""
    import mlflow

    client = mlflow.MlflowClient(report.tracking_uri)
    experiment = client.get_experiment_by_name(report.experiment)
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{T.ROLE}` = '{SUMMARY_ROLE}'",
        max_results=1,
    )
    if runs:
        run_id = runs[0].info.run_id
    else:
        run_id = client.create_run(
            experiment.experiment_id, run_name="summary", tags={T.ROLE: SUMMARY_ROLE}
        ).info.run_id
        client.set_terminated(run_id, "FINISHED")
    for path in paths:
        sub = "report" if path.suffix in (".html", ".md") else f"report/{path.parent.name}"
        client.log_artifact(run_id, str(path), sub)
    client.set_tag(run_id, "models", ", ".join(report.models))
    return run_id
