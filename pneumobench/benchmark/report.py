"""``pneumobench report``: the whole comparison in one file to send to a colleague.

Everything is read back from MLflow (runs, metric histories, the logged test predictions) and the
Optuna storage (studies), so a report can be made at any time, from any machine that reaches both.
The HTML file embeds its figures and opens offline; the Markdown variant writes them beside it.
"""

from __future__ import annotations

import base64
import html
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pneumobench import __version__
from pneumobench.benchmark import plots
from pneumobench.benchmark.leaderboard import (
    legend,
    load_leaderboard,
    normalize_metric,
    table_cells,
)
from pneumobench.benchmark.metrics import is_pneumonia, pneumonia_score
from pneumobench.data.labels import class_names_for
from pneumobench.text import markdown_table, safe_name
from pneumobench.tracking import reader
from pneumobench.tracking import schema as S
from pneumobench.tracking.store import client


@dataclass
class Figure:
    """One embedded plot."""

    name: str  # file stem, also the kind of plot
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Report:
    """Everything a report shows, read back from MLflow and Optuna; written by ``write_report``."""

    experiment: str
    metric: str
    tracking_uri: str
    headers: list[str]
    cells: list[list[str]]
    legend: str
    data_rows: list[dict[str, str]]
    leak_note: str
    environment: dict[str, str]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def build_report(
    experiment: str,
    tracking_uri: str,
    storage: str | None,
    metric: str = "recall",
    n_resamples: int = 2000,
    alpha: float = 0.05,
) -> Report:
    """Read an experiment's final models (MLflow) and studies (Optuna ``storage``, optional);
    ``n_resamples`` and ``alpha`` as for the leaderboard (the experiment's evaluation config)."""
    key = normalize_metric(metric)
    rows = load_leaderboard(experiment, metric, tracking_uri, n_resamples=n_resamples, alpha=alpha)
    store = client(tracking_uri)
    headers, cells = table_cells(rows, key)
    evaluated = [r for r in rows if r["status"] == "evaluated"]
    runs = {r["model"]: store.get_run(r["run_id"]) for r in rows}
    report = Report(
        experiment=experiment,
        metric=key,
        tracking_uri=tracking_uri,
        headers=headers,
        cells=cells,
        legend=legend(key, rows),
        data_rows=_data_rows(runs),
        leak_note=_leak_note(runs),
        environment=_environment(runs),
        models=[r["model"] for r in rows],
    )
    predictions = {}
    for row in evaluated:
        _, y, probs, _ = reader.read_predictions(store, row["run_id"])
        predictions[row["model"]] = (y, probs)
    class_names = _class_names(runs, predictions)
    if predictions:
        report.figures.append(_roc_pr(predictions, class_names))
        report.figures.append(_confusion_grid(predictions, class_names))
    report.figures.extend(_saliency(store, runs, evaluated, report.notes))
    curves = _validation_curves(store, runs)
    if curves is not None:
        report.figures.append(curves)
    for label, run in runs.items():
        where = storage or _logged_storage(run, report.notes)
        if where:
            report.figures.extend(_study_figures(label, run, where, report.notes))
    return report


def _logged_storage(run: Any, notes: list[str]) -> str | None:
    """The Optuna storage a model's run recorded (``--storage`` overrides it); None, with a
    note, when it cannot be opened from here (a SQLite file elsewhere, a redacted password)."""
    url = run.data.tags.get(S.OPTUNA_STORAGE)
    label = run.data.tags.get(S.LABEL, run.info.run_name)
    if not url:
        notes.append(f"{label}: no Optuna storage recorded; pass --storage for its history")
        return None
    if "***" in url:
        notes.append(f"{label}: its storage {url} needs a password: pass --storage")
        return None
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        notes.append(f"{label}: its storage {url} is not on this machine: pass --storage")
        return None
    return url


# --- sections ---------------------------------------------------------------------------------


def _first_trained(runs: dict[str, Any]) -> Any | None:
    """The best-ranked run of a trained model: it logged the data summary, the leak check and
    the provenance every model of the experiment shares (an ensemble row trained nothing)."""
    for run in runs.values():
        if run.data.tags.get(S.FAMILY) != S.FAMILY_ENSEMBLE:
            return run
    return None


def _leak_note(runs: dict[str, Any]) -> str:
    """What the leak check before training found (from the first model's logged params)."""
    first = _first_trained(runs)
    if first is None:
        return ""
    params = first.data.params
    counts = {
        k: params.get(f"data.leak_{k}")
        for k in ("shared_patients", "near_duplicate_pairs", "identical_groups")
    }
    if counts["near_duplicate_pairs"] is None:
        return "Leak check: not recorded for these runs."
    patients = (
        f"{counts['shared_patients']} patient(s) in more than one split"
        if params.get("data.patients_checked") == "True"
        else "patients not checked (this data has no patient ids; patient counts are unknown)"
    )
    return (
        f"Leak check before training: {patients}; {counts['near_duplicate_pairs']} near-duplicate "
        f"image pair(s) across splits; {counts['identical_groups']} group(s) of byte-identical "
        "files across splits. Findings are listed in each model run's data/leaks.csv."
    )


def _data_rows(runs: dict[str, Any]) -> list[dict[str, str]]:
    """One row per split from the first model's logged data summary (all share the split)."""
    first = _first_trained(runs)
    if first is None:
        return []
    params, tags = first.data.params, first.data.tags
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
                "patients": params.get(f"data.patients_{split}", "unknown (no patient ids)"),
                **classes,
                "image size": f"{tags.get('image_size', '?')} px",
                "source": tags.get("data_source", ""),
            }
        )
    return rows


def _environment(runs: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    first = _first_trained(runs)
    if first is not None:
        tags = first.data.tags
        for key in S.PROVENANCE_TAGS:
            if key in tags:
                env[f"runs: {key.replace('_', ' ')}"] = tags[key]
    env["report made"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    env["report made with"] = (
        f"pneumobench {__version__}, python {platform.python_version()}, "
        + ", ".join(f"{n} {version(n)}" for n in ("torch", "mlflow", "optuna"))
    )
    return env


def _class_names(runs: dict[str, Any], predictions: dict) -> list[str]:
    for run in runs.values():
        names = run.data.tags.get(S.CLASS_NAMES)
        if names:
            return names.split(",")
    k = next(iter(predictions.values()))[1].shape[1] if predictions else 2
    return list(class_names_for("binary" if k == 2 else "multiclass"))


def _roc_pr(predictions: dict, class_names: list[str]) -> Figure:
    curves = {
        label: (is_pneumonia(y), pneumonia_score(probs))
        for label, (y, probs) in predictions.items()
    }
    positive = "pneumonia" if len(class_names) == 2 else "any pneumonia (1 - P(normal))"
    return Figure(
        "roc_pr",
        "ROC and precision-recall curves, all models",
        plots.png(plots.roc_pr(curves, "test set")),
        f"Positive class: {positive}. Each final model's test predictions.",
    )


def _confusion_grid(predictions: dict, class_names: list[str]) -> Figure:
    panels = {label: (y, probs.argmax(1)) for label, (y, probs) in predictions.items()}
    return Figure(
        "confusion_matrices",
        "Confusion matrices, test set (threshold: argmax)",
        plots.png(plots.confusion_grid(panels, class_names)),
    )


def _saliency(store: Any, runs: dict[str, Any], evaluated: list, notes: list[str]) -> list[Figure]:
    """The Grad-CAM grid (the champion's confusion cells, every model side by side) and the
    panel images the models disagree on most."""
    panels = {}
    for row in evaluated:
        if row.get("family") == S.FAMILY_ENSEMBLE:
            continue
        panel = reader.read_saliency_panel(store, row["run_id"])
        if panel is None:
            notes.append(f"{row['model']}: no saliency panel logged (evaluated before it existed)")
            continue
        panels[row["model"]] = panel
    if not panels:
        return []
    reference = next(iter(panels))  # the best-ranked single model
    n = len(panels[reference]["rows"])
    grid = Figure(
        "saliency",
        f"Grad-CAM: where each model looks (rows: {reference}'s true / false positives / "
        "negatives)",
        plots.png(plots.saliency_figure(panels, reference)),
        f"The same test images for every model (a panel of {n} drawn with the experiment's seed, "
        "stratified by class). Each map explains the model's own decision at its operating "
        "point; titles give its P(pneumonia) and whether that decision was right.",
    )
    disagreement = Figure(
        "saliency_disagreement",
        "Grad-CAM on the panel images the models disagree on most",
        plots.png(
            plots.saliency_figure(
                panels,
                reference,
                plots.disagreement_rows(panels),
                "Largest spread of P(pneumonia) across models",
            )
        ),
        "Rows: the panel images with the largest standard deviation of P(pneumonia) across models.",
    )
    return [grid, disagreement]


def _validation_curves(store: Any, runs: dict[str, Any]) -> Figure | None:
    """Per model, the best trial's per-epoch losses and validation objective."""
    series = {}
    for label, run in runs.items():
        best = run.data.tags.get(S.BEST_TRIAL)
        if best is None:
            continue
        trial = reader.trial_run(store, run.info.experiment_id, label, best)
        if trial is None:
            continue
        objective = run.data.params.get(S.PARAM_OBJECTIVE, "val_f1")
        series[label] = {
            name: reader.metric_history(store, trial.info.run_id, name)
            for name in ("train_loss", "val_loss", objective)
        }
        series[label].update(_objective=objective, _trial=best)
    if not series:
        return None
    return Figure(
        "validation_curves",
        "Training curves of each model's best trial",
        plots.png(plots.training_curves(series)),
        "Losses (left axis) and the validation objective (right axis, green) per epoch.",
    )


def _study_figures(label: str, run: Any, storage: str, notes: list[str]) -> list[Figure]:
    import warnings

    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    study_name = run.data.tags.get(S.STUDY)
    if not study_name:
        return []
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        notes.append(f"{label}: study '{study_name}' is not in the Optuna storage given")
        return []
    out = []
    safe = safe_name(label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's matplotlib plots are "experimental"
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            notes.append(f"{label}: no complete trial, no optimization history")
            return out
        ax = ovm.plot_optimization_history(study)
        _retitle(ax, f"{label}: optimization history")
        out.append(
            Figure(f"history_{safe}", f"{label}: optimization history", plots.png(ax.figure))
        )
        varied = {k for t in complete for k in t.params} if len(complete) >= 2 else set()
        if varied:
            try:
                ax = ovm.plot_param_importances(study)
                _retitle(ax, f"{label}: hyperparameter importances (fANOVA)")
                out.append(
                    Figure(
                        f"importances_{safe}",
                        f"{label}: hyperparameter importances",
                        plots.png(ax.figure),
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
    """One self-contained HTML page: figures embedded as PNG data URIs."""
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
        f'<p class="note">{e(report.leak_note)}</p>',
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
        markdown_table(report.headers, report.cells),
        "",
        report.legend,
        "",
        "## Data",
        "",
    ]
    if report.data_rows:
        lines.append(markdown_table(*_dict_rows(report.data_rows)))
    lines += ["", report.leak_note]
    for fig in report.figures:
        (image_dir / f"{fig.name}.png").write_bytes(fig.png)
        lines += ["", f"### {fig.title}", "", f"![{fig.title}]({link_prefix}{fig.name}.png)"]
        if fig.caption:
            lines += ["", fig.caption]
    lines += [
        "",
        "## Environment",
        "",
        markdown_table(["", ""], [list(kv) for kv in report.environment.items()]),
    ]
    if report.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in report.notes)]
    return "\n".join(lines) + "\n"


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
    from pneumobench.tracking.writer import attach_report

    return attach_report(report.tracking_uri, report.experiment, paths, report.models)
