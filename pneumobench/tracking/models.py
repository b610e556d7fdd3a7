"""Final models in MLflow: the serving bundle, the pyfunc model, the Model Registry and its
``champion`` alias.

Each final model's run gets

- ``serving/`` (the bundle: spec, state dict, parity images; ``pneumobench.serving.bundle``),
  which ``predict`` and ``export`` load without unpickling anything;
- ``model``: an MLflow pyfunc model (TorchScript network + spec + pneumobench's decoding as code,
  ``tracking/pyfunc_model.py``) that loads with ``mlflow.pyfunc.load_model`` where
  pneumobench is not installed and serves with ``mlflow models serve``; registered as a version of
  ``pneumobench-<experiment>``, tagged with its test metrics, threshold and dataset digest.

The alias ``champion`` points at the version of the leaderboard's champion; ``set_champion`` moves
it (after ``pneumobench run`` and by ``pneumobench promote``).
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException

from pneumobench.errors import TrackingError
from pneumobench.tracking import schema as S

CHAMPION = "champion"
PYFUNC_CODE = Path(__file__).resolve().parent / "pyfunc_model.py"
PIXELS_CODE = Path(__file__).resolve().parent.parent / "data" / "pixels.py"


def registered_name(experiment: str) -> str:
    """The Model Registry name of an experiment's final models."""
    return f"pneumobench-{experiment}"


def log_serving(
    bundle: Path,
    torchscript: Path,
    experiment: str,
    version_tags: Mapping[str, str],
    example_image: bytes,
) -> str | None:
    """Log the bundle and the pyfunc model to the active run and register it; the version."""
    import numpy
    import pandas
    import PIL
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, Schema

    mlflow.log_artifacts(str(bundle), S.SERVING_DIR)
    with tempfile.TemporaryDirectory(prefix="pneumobench-pyfunc-") as tmp:
        pixels = Path(tmp) / "pneumobench_pixels.py"
        shutil.copyfile(PIXELS_CODE, pixels)
        info = mlflow.pyfunc.log_model(
            name=S.MODEL_DIR,
            python_model=str(PYFUNC_CODE),
            artifacts={"model": str(torchscript), "spec": str(bundle / "spec.json")},
            code_paths=[str(pixels)],
            # a string column of base64 text (dataframe_split): the model decodes it itself, so a
            # path or a broken image gets a clear error in its row, not a server-side 400
            signature=ModelSignature(
                inputs=Schema([ColSpec(DataType.string, "image")]),
                outputs=_output_schema(bundle),
            ),
            input_example=pandas.DataFrame({"image": [base64.b64encode(example_image).decode()]}),
            pip_requirements=[  # stated, not inferred (inference imports the model: slow)
                f"mlflow=={mlflow.__version__}",
                f"torch=={torch.__version__.split('+')[0]}",
                f"numpy=={numpy.__version__}",
                f"pandas=={pandas.__version__}",
                f"pillow=={PIL.__version__}",
                "pydicom",
            ],
        )
    try:
        version = mlflow.register_model(info.model_uri, registered_name(experiment))
    except MlflowException as exc:  # a store without a registry: the run keeps everything
        return _warn_unregistered(exc)
    client = mlflow.MlflowClient()
    for key, value in version_tags.items():
        client.set_model_version_tag(version.name, version.version, key, value)
    return str(version.version)


def log_serving_in(
    run_id: str,
    bundle: Path,
    torchscript: Path,
    experiment: str,
    version_tags: Mapping[str, str],
    example_image: bytes,
) -> str | None:
    """``log_serving`` into the (finished) run ``run_id``, reopened for it."""
    with mlflow.start_run(run_id=run_id):
        return log_serving(bundle, torchscript, experiment, version_tags, example_image)


def log_bundle(run_id: str, bundle: Path) -> None:
    """A serving bundle as the ``serving/`` artifacts of a (finished) run."""
    mlflow.MlflowClient().log_artifacts(run_id, str(bundle), S.SERVING_DIR)


def _output_schema(bundle: Path):
    """p_<class> per class, the score, the threshold, the decision and the error text."""
    import json

    from mlflow.types import ColSpec, DataType, Schema

    names = json.loads((bundle / "spec.json").read_text())["class_names"]
    columns = [ColSpec(DataType.double, f"p_{c}") for c in names]
    columns += [ColSpec(DataType.double, "pneumonia_score"), ColSpec(DataType.double, "threshold")]
    columns += [ColSpec(DataType.string, "prediction"), ColSpec(DataType.string, "error")]
    return Schema(columns)


def _warn_unregistered(exc: MlflowException) -> None:
    import logging

    logging.getLogger(__name__).warning("model not registered: %s", str(exc).splitlines()[0])
    return None


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered version: its number, run and label."""

    name: str
    version: str
    run_id: str
    label: str


def version_of_run(experiment: str, run_id: str) -> RegisteredVersion | None:
    """The newest registered version logged by ``run_id`` (None: not registered)."""
    name = registered_name(experiment)
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    if not versions:
        return None
    newest = max(versions, key=lambda v: int(v.version))
    return RegisteredVersion(name, str(newest.version), run_id, newest.tags.get(S.LABEL, ""))


def champion(experiment: str) -> RegisteredVersion | None:
    """The version the ``champion`` alias points at (None: no alias yet)."""
    name = registered_name(experiment)
    return resolve_alias(name, CHAMPION, missing_ok=True)


def resolve_alias(name: str, alias: str, *, missing_ok: bool = False) -> RegisteredVersion | None:
    """``NAME@ALIAS`` -> the version it points at."""
    client = mlflow.MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if missing_ok:
            return None
        raise TrackingError(
            f"no registered model version {name}@{alias} in this tracking store "
            f"({str(exc).splitlines()[0]}). `pneumobench promote` sets the champion alias; "
            "`mlflow ui` lists registered models."
        ) from None
    return RegisteredVersion(
        name, str(version.version), str(version.run_id), version.tags.get(S.LABEL, "")
    )


def set_champion(
    experiment: str, run_id: str, metric: str
) -> tuple[RegisteredVersion | None, RegisteredVersion | None]:
    """Point ``champion`` at the version of ``run_id``; (previous, new). New is None when the run
    has no registered version (nothing is moved then)."""
    new = version_of_run(experiment, run_id)
    previous = champion(experiment)
    if new is None:
        return previous, None
    client = mlflow.MlflowClient()
    if previous is None or previous.version != new.version:
        client.set_registered_model_alias(new.name, CHAMPION, new.version)
    client.set_registered_model_tag(new.name, S.CHAMPION_METRIC, metric)
    client.set_model_version_tag(new.name, new.version, S.CHAMPION_METRIC, metric)
    return previous, new


def log_model_card(version: RegisteredVersion, text: str) -> str:
    """The model card as an artifact of the version's run (``model_card/<name>-v<version>.md``)
    and as the version's description (the MLflow UI renders it); the artifact path."""
    client = mlflow.MlflowClient()
    path = f"{S.MODEL_CARD}/{version.name}-v{version.version}.md"
    client.log_text(version.run_id, text, path)
    client.update_model_version(version.name, version.version, description=text)
    return path


def connect(uri: str) -> None:
    """Point this process's registry and artifact calls at ``uri``."""
    from pneumobench.tracking.store import with_connect_timeout

    mlflow.set_tracking_uri(with_connect_timeout(uri))


def resolve_model_run(
    experiment: str,
    *,
    label: str | None = None,
    run_id: str | None = None,
    registered: str | None = None,
) -> tuple[str, str]:
    """(run id, how it was chosen) of a final model: by run id, by its label in ``experiment``,
    by ``NAME@ALIAS`` (or ``NAME/VERSION``), else the experiment's ``champion`` alias."""
    if run_id:
        return run_id, f"run {run_id}"
    if label:
        return _run_of_label(experiment, label), f"model {label} of experiment {experiment}"
    if registered:
        name, sep, alias = registered.partition("@")
        if sep:
            found = resolve_alias(name, alias)
            assert found is not None
            return found.run_id, f"{name}@{alias} (version {found.version}, {found.label})"
        name, sep, number = registered.partition("/")
        if not sep:
            raise TrackingError(f"--registered {registered}: write NAME@ALIAS or NAME/VERSION")
        try:
            version = mlflow.MlflowClient().get_model_version(name, number)
        except MlflowException as exc:
            raise TrackingError(f"--registered {registered}: {str(exc).splitlines()[0]}") from None
        return str(version.run_id), f"{name} version {number}"
    name = registered_name(experiment)
    found = resolve_alias(name, CHAMPION, missing_ok=True)
    if found is None:
        raise TrackingError(
            f"no {name}@{CHAMPION} yet: run `pneumobench run` to the end (it sets the alias) or "
            "`pneumobench promote`, or choose a model with --model LABEL or --run-id ID"
        )
    return found.run_id, f"{name}@{CHAMPION} (version {found.version}, {found.label})"


def _run_of_label(experiment: str, label: str) -> str:
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise TrackingError(f"no MLflow experiment named '{experiment}' (use --experiment)")
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=(
            f"tags.`{S.ROLE}` = '{S.ROLE_MODEL}' and tags.`{S.LABEL}` = '{label}' "
            f"and tags.`{S.FINAL}` = '{S.FINAL_DONE}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        labels = sorted(
            {
                r.data.tags.get(S.LABEL, "")
                for r in client.search_runs(
                    [exp.experiment_id],
                    filter_string=f"tags.`{S.FINAL}` = '{S.FINAL_DONE}'",
                )
            }
            - {""}
        )
        raise TrackingError(
            f"no evaluated model '{label}' in experiment {experiment}; evaluated: "
            f"{', '.join(labels) or 'none'}"
        )
    return str(runs[0].info.run_id)


def download_serving(run_id: str, into: Path) -> Path:
    """The run's serving bundle, downloaded into ``into``."""
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=S.SERVING_DIR, dst_path=str(into)
        )
    except (MlflowException, OSError) as exc:
        raise TrackingError(
            f"run {run_id} has no {S.SERVING_DIR}/ bundle ({str(exc).splitlines()[0][:160]}): it "
            "was evaluated before predict/export existed; `pneumobench run --force` evaluates it "
            "again and logs one"
        ) from None
    return Path(local)


def log_export(run_id: str, path: Path, fmt: str, difference: float) -> None:
    """Attach an exported file and its parity to the model's run."""
    client = mlflow.MlflowClient()
    client.log_artifact(run_id, str(path), S.EXPORT_DIR)
    client.log_metric(run_id, f"export_{fmt}_max_abs_diff", difference)
