"""The reporting-guideline section: CLAIM 2024 and TRIPOD+AI items, filled with what the harness
knows about this experiment, and the items only the author can answer, listed as such.

Item numbers are given where the guideline numbers them as cited here (CLAIM 33, 37, 39, 43;
TRIPOD+AI 12e, 15, 16, 23a); other items are named by their topic. Check the numbering against
the published checklist you submit with: the harness fills content, not the form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pneumobench.report.figures import Section, Table
from pneumobench.report.rows import LeaderboardRow
from pneumobench.tracking import schema as S

FILLED = "filled by pneumobench"
AUTHOR = "author to answer"


@dataclass(frozen=True)
class Facts:
    """What the report knows, gathered before the checklist is written."""

    rows: list[LeaderboardRow]
    data_rows: list[dict[str, str]]
    leak_note: str
    environment: dict[str, str]
    looks: tuple[int, int]
    external: list[str]  # external test sets evaluated
    subgroups: list[str]  # groupings shown
    first_run: Any | None  # the top single model's run (tags, params)


# (guideline, item, key of what the harness fills, or None: the author's, with a hint)
ITEMS: tuple[tuple[str, str, str | None], ...] = (
    ("CLAIM", "data sources", "source"),
    ("CLAIM", "eligibility, setting, dates of the patients", None),
    ("CLAIM", "preprocessing", "preprocessing"),
    ("CLAIM", "ground truth, annotators", None),
    ("CLAIM", "data partitions (counts per split and class)", "splits"),
    ("CLAIM", "disjointness of partitions", "leaks"),
    ("CLAIM", "model description, initialisation", "models"),
    ("CLAIM", "training details, model selection", "selection"),
    ("CLAIM", "metrics, uncertainty and significance", "statistics"),
    ("CLAIM", "test set looks", "looks"),
    ("CLAIM", "33 external testing", "external"),
    ("CLAIM", "37 subgroup performance", "subgroups"),
    ("CLAIM", "39 failure analysis", "failures"),
    ("CLAIM", "43 code, model and data availability", "availability"),
    ("CLAIM", "clinical role, intended use, limitations in practice", None),
    ("TRIPOD+AI", "12e discrimination, calibration, clinical utility", "performance"),
    ("TRIPOD+AI", "15 how thresholds were identified", "thresholds"),
    ("TRIPOD+AI", "16 development vs evaluation data", "shift"),
    ("TRIPOD+AI", "23a performance in key subgroups", "subgroups"),
    ("TRIPOD+AI", "sample size rationale", None),
    ("TRIPOD+AI", "patient and public involvement, funding, conflicts", None),
    ("both", "computing environment", "environment"),
)

AUTHOR_HINTS = {
    "eligibility, setting, dates of the patients": "not recorded by the data",
    "ground truth, annotators": "labels come from the source's folders and file names; how they "
    "were established is the source's (cite it)",
    "clinical role, intended use, limitations in practice": "see the champion's model card; the "
    "clinical claim is the author's",
    "sample size rationale": "the test set's size and its intervals are reported",
}


def checklist_section(facts: Facts) -> Section:
    """The checklist as one table: guideline, item, what pneumobench reports, status."""
    known = _filled(facts)
    cells = [
        [g, item, known[key], FILLED] if key else [g, item, AUTHOR_HINTS.get(item, "-"), AUTHOR]
        for g, item, key in ITEMS
    ]
    author = sum(1 for *_, key in ITEMS if key is None)
    return Section(
        "Reporting checklist (CLAIM 2024, TRIPOD+AI)",
        f"{len(cells) - author} items filled from the logged runs; {author} only the author can "
        "answer. Numbers name the items the harness was built against; the rest by topic.",
        [Table("Checklist", ["guideline", "item", "what this report says", "status"], cells)],
    )


def _filled(f: Facts) -> dict[str, str]:
    tags = f.first_run.data.tags if f.first_run is not None else {}
    evaluated = [r for r in f.rows if r.evaluated]
    note = evaluated[0].validation_note if evaluated and evaluated[0].validation_note else "none"
    looks, experiments = f.looks
    return {
        "source": f"{tags.get(S.DATA_SOURCE, '?')} at {tags.get(S.DATA_PATH, '?')}; dataset "
        f"digest {tags.get(S.DATASET_DIGEST, '?')}",
        "preprocessing": f"decoded to grey, resized to {tags.get(S.IMAGE_SIZE, '?')} px "
        f"(data.resize), scaled to [0, 1]; the resolved config is logged ({S.CONFIG_ARTIFACT})",
        "splits": "; ".join(_split(d) for d in f.data_rows) or "not recorded",
        "leaks": f.leak_note or "not recorded",
        "models": ", ".join(
            f"{r.model} ({r.registry_name or r.family}, {r.starting_point})" for r in evaluated
        ),
        "selection": "one protocol for every model; Optuna search and early stopping on "
        "validation only; thresholds chosen on validation predictions",
        "statistics": "block 1 read off test curves, block 2 at validation thresholds; bootstrap "
        "intervals resampling test patients; paired bootstrap against the top row, "
        "Holm-adjusted; DeLong and McNemar as extras",
        "looks": f"{looks} final evaluation(s) of this test set in this store, across "
        f"{experiments} experiment(s)",
        "external": ", ".join(f.external) or "none: internal test split only (External test)",
        "subgroups": ", ".join(f.subgroups)
        or "none (no groups in the file names, data.subgroups not set)",
        "failures": "confusion matrices at the deployed thresholds; the most confident false "
        "negatives and positives with Grad-CAM (Failure analysis)",
        "availability": f"pneumobench {tags.get(S.VERSION, '?')}, commit "
        f"{tags.get(S.GIT_COMMIT, '?')}; models in the MLflow registry with their serving "
        "bundles; where the data can be obtained is the author's to state",
        "performance": "ROC / PR reads and areas; ECE, Brier, calibration intercept and slope; "
        "decision curves",
        "thresholds": "on each final model's validation predictions: the lowest threshold "
        "reaching the specificity target (deployed), the sensitivity target, best F1, best "
        "accuracy; applied unchanged to test",
        "shift": f"validation: {note}. Whether each deployed threshold held its target on test "
        "shows how far test differs",
        "environment": "; ".join(
            f"{k}: {v}" for k, v in f.environment.items() if k.startswith("runs:")
        )
        or "not recorded",
    }


def _split(d: dict[str, str]) -> str:
    classes = "".join(
        f", {k} {v}"
        for k, v in d.items()
        if k not in ("split", "images", "patients", "image size", "source")
    )
    return f"{d['split']}: {d['images']} images, {d['patients']} patients{classes}"
