"""The report's figures, each a :class:`Figure` (PNG bytes, title, caption), read back from
MLflow (predictions, saliency panels, metric histories) and Optuna (studies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pneumobench.evaluate.metrics import decide_at, is_pneumonia, pneumonia_score
from pneumobench.report import plots
from pneumobench.report.rows import LeaderboardRow
from pneumobench.text import safe_name
from pneumobench.tracking import reader
from pneumobench.tracking import schema as S


@dataclass
class Figure:
    """One embedded plot."""

    name: str  # file stem, also the kind of plot
    title: str
    png: bytes
    caption: str = ""


@dataclass
class Table:
    """One table of a report section."""

    title: str
    headers: list[str]
    cells: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    """A titled part of the report: an introduction, then tables and figures in order."""

    title: str
    intro: str = ""
    blocks: list[Figure | Table] = field(default_factory=list)


def roc_pr(predictions: dict, class_names: list[str]) -> Figure:
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


def confusion_grid(
    predictions: dict, class_names: list[str], thresholds: dict[str, float]
) -> Figure:
    """Every model's test confusion matrix at its deployed threshold (argmax where none is
    logged)."""
    panels = {
        label: (y, decide_at(probs, thresholds[label]) if label in thresholds else probs.argmax(1))
        for label, (y, probs) in predictions.items()
    }
    return Figure(
        "confusion_matrices",
        "Confusion matrices, test set, at each model's deployed threshold",
        plots.png(plots.confusion_grid(panels, class_names)),
        "The decisions predict and serving make: P(pneumonia) at or above the threshold chosen on "
        "validation for the specificity target (then the likelier pneumonia class).",
    )


def saliency(store: Any, evaluated: list[LeaderboardRow], notes: list[str]) -> list[Figure]:
    """The Grad-CAM grid (the champion's confusion cells, every model side by side) and the
    panel images the models disagree on most."""
    panels = {}
    for row in evaluated:
        if row.is_ensemble:
            continue
        panel = reader.read_saliency_panel(store, row.run_id)
        if panel is None:
            notes.append(f"{row.model}: no saliency panel logged (evaluated before it existed)")
            continue
        panels[row.model] = panel
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


def validation_curves(store: Any, runs: dict[str, Any]) -> Figure | None:
    """Per model, the best trial's per-epoch losses and validation objective."""
    series = {}
    for label, run in runs.items():
        best = run.data.tags.get(S.BEST_TRIAL)
        if best is None:
            continue
        trial = reader.trial_run(store, run.info.experiment_id, label, best)
        if trial is None:
            continue
        objective = run.data.params.get(S.PARAM_OBJECTIVE, S.VAL_LOSS)
        series[label] = {
            name: reader.metric_history(store, trial.info.run_id, name)
            for name in (S.TRAIN_LOSS, S.VAL_LOSS, objective)
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


def study_figures(label: str, run: Any, storage: str, notes: list[str]) -> list[Figure]:
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
