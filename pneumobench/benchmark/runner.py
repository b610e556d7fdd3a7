"""``pneumobench run``: every configured model through search, then one test evaluation each.

Re-running the same command resumes: studies keep their finished trials, a model's parent run is
found again by its tags, and a model whose final evaluation is logged is not evaluated again.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState
from rich.console import Console

from pneumobench import __version__, interrupts
from pneumobench.benchmark import tracking as T
from pneumobench.benchmark.coordination import Claims, Lease
from pneumobench.benchmark.device import resolve_device
from pneumobench.benchmark.evaluation import (
    HeldOutResult,
    evaluate_test,
    figures,
    metrics_to_log,
)
from pneumobench.benchmark.progress import PlainProgress, make_progress
from pneumobench.benchmark.recovery import (
    RUN_ATTR,
    WORKER_ATTR,
    close_orphan_runs,
    fail_dead_local_trials,
    is_dead_local_worker,
    this_worker,
)
from pneumobench.benchmark.search import (
    beats,
    best_trial,
    best_value,
    counted_trials,
    open_study,
    storage_for,
    suggest,
)
from pneumobench.benchmark.search import study_name as make_study_name
from pneumobench.benchmark.training import DivergedError, fit, is_better, seed_everything
from pneumobench.config import ExperimentConfig, ModelEntry, ProtocolConfig
from pneumobench.data import PreparedData, prepare_data
from pneumobench.errors import ModelError, TrackingError
from pneumobench.registry import check_model_name, create_model

CHECKPOINT_ROOT = Path(".pneumobench/checkpoints")


@dataclass
class ModelOutcome:
    label: str
    status: str  # evaluated | skipped | delegated (another worker evaluates) | failed
    run_id: str | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""


def run_experiment(
    config: ExperimentConfig, *, force: bool = False, console: Console | None = None
) -> list[ModelOutcome]:
    console = console or Console()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device = resolve_device(config.device)
    for entry in config.models:  # fail on a misspelt model before any minute of training
        check_model_name(entry.name)
    claims = Claims(storage_for(config).engine)  # an unreachable storage fails before any work
    T.configure_tracking(config.tracking.uri)
    experiment_id = T.ensure_experiment(
        config.name, config.tracking.uri, config.tracking.artifact_location
    )
    import mlflow

    mlflow.set_experiment(experiment_id=experiment_id)
    started = time.perf_counter()
    data = prepare_data(config)
    summary = data.summary()
    console.print(
        f"[bold]{config.name}[/]: {data.source} data from {data.root}, {config.data.image_size} px, "
        f"train {summary['n_train']} / val {summary['n_val']} / test {summary['n_test']} images "
        f"(digest {data.digest}, seed {config.seed}) on {device} "
        f"[dim]({time.perf_counter() - started:.1f}s to load)[/]"
    )
    for note in data.notes:
        console.print(f"  [dim]{note}[/]")
    for line in data.skipped[:10]:
        console.print(f"  [yellow]skipped[/] {line}")
    for group in data.leaks[:5]:
        console.print(f"  [yellow]identical files across splits:[/] {', '.join(group)}")
    outcomes = []
    with make_progress(console) as progress:
        for entry in config.models:
            bench = ModelBenchmark(
                config, entry, data, experiment_id, device, console, claims, progress
            )
            outcomes.append(bench.run(force=force))
    return outcomes


class ModelBenchmark:
    """Search and final evaluation of one model, logged under one MLflow parent run."""

    def __init__(
        self,
        config: ExperimentConfig,
        entry: ModelEntry,
        data: PreparedData,
        experiment_id: str,
        device: torch.device,
        console: Console,
        claims: Claims,
        progress: PlainProgress | None = None,
    ) -> None:
        self.config, self.entry, self.data = config, entry, data
        self.experiment_id, self.device, self.console = experiment_id, device, console
        self.claims = claims
        self.progress = progress or PlainProgress(console)
        self.force = False
        self._trial_index = 0
        self._admission: Lease | None = None
        self.label = entry.key
        self.protocol = config.protocol_for(entry)
        self.space = config.space_for(entry)
        self.n_trials = config.n_trials_for(entry)
        self.study_name = make_study_name(config.name, self.label)
        self.objective_name = config.search.objective
        self.direction = config.search.direction
        self.checkpoints = CHECKPOINT_ROOT / _safe(config.name) / _safe(self.label)
        self._initial_state: dict[str, torch.Tensor] | None = None
        self._meta: dict[str, Any] = {}

    # --- model construction --------------------------------------------------------------
    def build(self, dropout: float) -> torch.nn.Module:
        """Same seed, same initial weights for every trial; pretrained weights fetched once."""
        num_classes = len(self.data.class_names)
        size = self.config.data.image_size
        if self._initial_state is None:
            seed_everything(self.config.seed)
            model = create_model(
                self.entry.name,
                num_classes,
                pretrained=self.entry.pretrained,
                dropout=dropout,
                image_size=size,
            )
            self._initial_state = {k: v.clone() for k, v in model.state_dict().items()}
            self._meta = {
                "family": model.family,
                "num_params": model.num_params,
                "pretrained_source": model.pretrained_source,
            }
            return model
        model = create_model(
            self.entry.name, num_classes, pretrained=False, dropout=dropout, image_size=size
        )
        model.load_state_dict(self._initial_state)
        model.pretrained_source = self._meta["pretrained_source"]
        return model

    def _fit(
        self, model: torch.nn.Module, protocol: ProtocolConfig, seed: int, on_epoch: Any = None
    ) -> Any:
        return fit(
            model,
            self.data,
            protocol,
            augment=self.config.data.augment,
            objective=self.objective_name,
            direction=self.direction,
            device=self.device,
            seed=seed,
            on_epoch=on_epoch,
        )

    # --- the whole model ------------------------------------------------------------------
    def run(self, force: bool = False) -> ModelOutcome:
        import mlflow

        self.force = force
        self.build(self.protocol.dropout)  # validates weights and records the model's metadata
        parent_id, describe = self._agree_on_parent()
        parent = mlflow.MlflowClient().get_run(parent_id)
        digest = parent.data.tags.get("dataset_digest")
        if digest is not None and digest != self.data.digest:
            raise TrackingError(
                f"{self.label}: this worker's data (digest {self.data.digest}) differ from the "
                f"data the study '{self.study_name}' was run on (digest {digest}, run "
                f"{parent_id}): point every worker at the same data and data settings, or use a "
                "new experiment name for new data"
            )
        if parent.data.tags.get(T.FINAL) == "done" and not force:
            study = open_study(self.config, self.label, self.protocol.max_epochs)
            done = counted_trials(study)
            if done >= self.n_trials:
                self.console.print(
                    f"[bold]{self.label}[/]: already searched ({done} trials) and evaluated on test "
                    f"in run {parent_id}; skipping (--force evaluates again)"
                )
                return ModelOutcome(self.label, "skipped", parent_id)

        active = mlflow.start_run(run_id=parent_id)
        try:
            if describe:
                self._describe_parent()
            outcome = self._search_and_evaluate(active.info.run_id)
        except KeyboardInterrupt:
            mlflow.end_run("KILLED")
            raise
        except BaseException:
            mlflow.end_run("FAILED")
            raise
        mlflow.end_run("FINISHED")
        return outcome

    def _agree_on_parent(self) -> tuple[str, bool]:
        """The one parent run of this model's study, shared by every worker; and whether this
        worker must describe it (tags, params, data split).

        Each worker that finds no parent creates a candidate run and claims the study's parent
        slot with it; the first claim wins, the others delete their candidates and use the
        winner's. See coordination.py.
        """
        import mlflow

        key = f"parent:{self.study_name}"
        client = mlflow.MlflowClient()
        run_id = self.claims.get(key)
        if run_id is None:
            legacy = T.find_parent_run(self.experiment_id, self.label, self.study_name)
            if legacy is not None:  # a store written before parents were claimed
                return self.claims.claim(key, legacy.info.run_id), False
            candidate = client.create_run(
                self.experiment_id,
                run_name=self.label,
                tags={T.LABEL: self.label, T.STUDY: self.study_name},
            ).info.run_id
            run_id = self.claims.claim(key, candidate)
            if run_id != candidate:
                client.delete_run(candidate)
                return run_id, False
            return run_id, True
        try:
            run = client.get_run(run_id)
        except Exception as exc:
            raise TrackingError(
                f"{self.label}: the parent run {run_id} recorded for study '{self.study_name}' is "
                f"not in the tracking store {self.config.tracking.uri} ({exc}). The Optuna "
                "storage and the MLflow store belong together: use the pair of the first run, or "
                "a new experiment name."
            ) from None
        if run.info.lifecycle_stage == "deleted":
            raise TrackingError(
                f"{self.label}: the parent run {run_id} of study '{self.study_name}' was deleted "
                "in MLflow: restore it (`mlflow runs restore`) or use a new experiment name"
            )
        return run_id, run.data.tags.get(T.ROLE) != "model"  # its creator died before describing

    def _describe_parent(self) -> None:
        import mlflow

        cfg, data = self.config, self.data
        mlflow.set_tags(
            {
                T.ROLE: "model",
                T.LABEL: self.label,
                T.STUDY: self.study_name,
                "model": self.entry.name,
                "family": self._meta["family"],
                "num_params": str(self._meta["num_params"]),
                "pretrained_source": self._meta["pretrained_source"],
                "task": cfg.task,
                "image_size": str(cfg.data.image_size),
                "data_source": cfg.data.source,
                "dataset_digest": data.digest,
                "seed": str(cfg.seed),
                "device": str(self.device),
                "git_commit": T.git_commit(),
                "pneumobench_version": __version__,
                "versions": T.library_versions(),
                "class_names": ",".join(data.class_names),
            }
        )
        params = {f"protocol.{k}": v for k, v in self.protocol.model_dump().items()}
        params.update(
            {
                "search.n_trials": self.n_trials,
                "search.objective": self.objective_name,
                "search.sampler": cfg.search.sampler,
                "search.pruner": cfg.search.pruner,
                "data.image_size": cfg.data.image_size,
                "data.val_fraction": cfg.data.val_fraction,
                "data.limit_per_class": cfg.data.limit_per_class,
                "seed": cfg.seed,
                "search.space": "; ".join(f"{k}={v.model_dump()}" for k, v in self.space.items()),
            }
        )
        mlflow.log_params(params)
        mlflow.log_params({f"data.{k}": v for k, v in data.summary().items()})
        mlflow.log_text(data.split_csv(), "data/split.csv")
        mlflow.log_params(
            {
                "data.skipped_images": len(data.skipped),
                "data.duplicate_groups_across_splits": len(data.leaks),
            }
        )
        if data.skipped:
            mlflow.log_text("\n".join(data.skipped) + "\n", "data/skipped_images.txt")
        if data.leaks:
            rows = [f"{g},{member}" for g, group in enumerate(data.leaks) for member in group]
            mlflow.log_text(
                "group,split_and_path\n" + "\n".join(rows) + "\n",
                "data/duplicates_across_splits.csv",
            )

    def _search_and_evaluate(self, parent_id: str) -> ModelOutcome:
        import mlflow

        study = open_study(self.config, self.label, self.protocol.max_epochs)
        study.set_user_attr("mlflow_parent_run_id", parent_id)
        reaped = fail_dead_local_trials(study)
        if reaped:
            self.console.print(
                f"[yellow]{self.label}[/]: trial(s) {', '.join(map(str, reaped))} were cut off by a "
                "crash or kill: marked failed, their slots run again"
            )
        close_orphan_runs(study)
        self._search(study)
        close_orphan_runs(study)  # runs of trials whose worker died meanwhile
        if best_value(study) is None:
            message = "no trial completed: see the trial runs' pneumobench.fail_reason tags"
            mlflow.set_tags({T.FINAL: "failed", "pneumobench.fail_reason": message})
            self.console.print(f"[bold red]{self.label}[/]: {message}")
            return ModelOutcome(self.label, "failed", parent_id, message=message)

        key, me = f"final:{self.study_name}", this_worker()
        holder = self.claims.claim(key, me)
        if holder != me and not (
            (self.force or is_dead_local_worker(holder)) and self.claims.take_over(key, holder, me)
        ):
            self.console.print(
                f"[bold]{self.label}[/]: the study's budget is spent; worker {holder} runs its "
                "final evaluation"
            )
            return ModelOutcome(self.label, "delegated", parent_id)
        try:
            tags = mlflow.MlflowClient().get_run(parent_id).data.tags
            evaluated = int(tags.get("pneumobench.final_trials", "-1"))
            if (
                tags.get(T.FINAL) == "done"
                and evaluated >= counted_trials(study)
                and not self.force
            ):
                self.console.print(
                    f"[bold]{self.label}[/]: evaluated on test by another worker "
                    f"({evaluated} trials)"
                )
                return ModelOutcome(self.label, "delegated", parent_id)
            return self._final_evaluation(study)
        finally:
            self.claims.release(key, me)

    def _search(self, study: optuna.Study) -> None:
        """Run trials until the study holds ``n_trials`` finished ones, however many workers share
        it. Admission is decided under a study-wide lock (count, then create the trial), so the
        workers together never start more trials than the budget; a worker whose budget is taken
        waits while others' trials run, since a dead one's trial comes back to be retried."""
        n = self.n_trials
        attempts = max(0, n - counted_trials(study))  # failures do not loop forever
        timeout = self.config.search.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        announced = waiting_said = False
        while deadline is None or time.monotonic() < deadline:
            interrupts.check()
            lease = self.claims.acquire(f"admit:{self.study_name}")
            try:
                fail_dead_local_trials(study)
                with warnings.catch_warnings():  # "experimental" since Optuna 2.9
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                states = [t.state for t in study.get_trials(deepcopy=False)]
                counted = sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)
                running = states.count(TrialState.RUNNING)
                queued = states.count(TrialState.WAITING)  # retries of dead workers' trials
                if counted >= n:
                    self.progress.model_finished(self.label)
                    return
                if queued or (counted + running < n and attempts > 0):
                    if not announced:
                        announced = True
                        self._announce(n - counted, counted, running)
                        self.progress.model_started(
                            self.label, n, counted, self.protocol.max_epochs
                        )
                    attempts -= 0 if queued else 1
                    self._trial_index = min(n, counted + running + 1)
                    self._admission = lease  # released by the objective once the trial exists
                    study.optimize(
                        self._objective,
                        n_trials=1,
                        callbacks=[self._after_trial],
                        catch=(DivergedError, torch.OutOfMemoryError, ModelError),
                        gc_after_trial=True,
                    )
                    continue
            finally:
                lease.release()
            if running == 0:
                self.progress.model_finished(self.label)
                return  # nothing left that could finish: the budget cannot be filled now
            if not waiting_said:
                waiting_said = True
                self.console.print(
                    f"  [dim]{self.label}: waiting for {running} trial(s) of other workers "
                    f"({counted}/{n} finished)[/]"
                )
            time.sleep(self.config.search.poll_interval)

    def _announce(self, remaining: int, done: int, running: int) -> None:
        self.console.print(
            f"[bold]{self.label}[/] ({self._meta['num_params'] / 1e6:.2f} M params, "
            f"{self._meta['pretrained_source']}): {remaining} trial(s) to run"
            + (f", {done} kept from before" if done else "")
            + (f", {running} running in other workers" if running else "")
        )

    # --- one trial --------------------------------------------------------------------------
    def _objective(self, trial: optuna.Trial) -> float:
        import mlflow

        trial.set_user_attr(WORKER_ATTR, this_worker())
        if self._admission is not None:  # the trial exists: other workers may count it now
            self._admission.release()
        params = suggest(trial, self.space)
        protocol = self.protocol.model_copy(update=params)
        model = self.build(protocol.dropout)
        self.progress.trial_started(self.label, trial.number, self._trial_index, self.n_trials)
        tracking = self.config.tracking
        if tracking.system_metrics:
            mlflow.set_system_metrics_sampling_interval(tracking.system_metrics_interval)
        run = mlflow.start_run(
            experiment_id=self.experiment_id,
            run_name=f"{self.label}/trial-{trial.number:03d}",
            nested=True,
            log_system_metrics=tracking.system_metrics,
            tags={
                T.ROLE: "trial",
                T.LABEL: self.label,
                T.STUDY: self.study_name,
                T.TRIAL_NUMBER: str(trial.number),
                T.TRIAL_STATE: "RUNNING",
            },
        )
        trial.set_user_attr(RUN_ATTR, run.info.run_id)
        mlflow.log_params(protocol.model_dump())
        best: dict[str, float] = {}

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            interrupts.check()
            mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)}, step=epoch)
            score = metrics[self.objective_name]
            if not best or is_better(score, best[self.objective_name], self.direction):
                best.clear()
                best.update(metrics, best_epoch=epoch)
            self.progress.epoch(
                self.label,
                trial.number,
                epoch,
                protocol.max_epochs,
                metrics,
                self.objective_name,
            )
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")

        status, state = "FAILED", "FAIL"
        try:
            result = self._fit(model, protocol, self.config.seed, on_epoch)
            maximize = self.direction == "maximize"
            if beats(result.best_score, trial.number, best_trial(trial.study), maximize):
                path = self._save_checkpoint(
                    trial.number, result.state_dict, params, result.best_score
                )
                if self._upload_checkpoints:
                    mlflow.log_artifact(str(path), "checkpoint")
            status, state = "FINISHED", "COMPLETE"
            return result.best_score
        except optuna.TrialPruned:
            status, state = "FINISHED", "PRUNED"
            raise
        except KeyboardInterrupt:
            status, state = "KILLED", "INTERRUPTED"
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, torch.OutOfMemoryError):
                reason = (
                    f"out of memory with batch_size {protocol.batch_size}: try a smaller "
                    "protocol.batch_size (or search it)"
                )
            trial.set_user_attr("fail_reason", reason[:2000])
            mlflow.set_tag("pneumobench.fail_reason", reason[:5000])
            raise
        finally:
            if best:
                mlflow.log_metrics(
                    {
                        f"best_{k}": v
                        for k, v in best.items()
                        if k.startswith("val_") and math.isfinite(v)
                    }
                )
                mlflow.log_metric("best_epoch", best["best_epoch"])
            mlflow.set_tag(T.TRIAL_STATE, state)
            mlflow.end_run(status)

    def _after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Report the trial, and keep only the best trial's checkpoint on disk."""
        value = "-" if trial.value is None else f"{trial.value:.4f}"
        best = best_trial(study)
        self.progress.trial_finished(self.label, None if best is None else best.value)
        seconds = trial.duration.total_seconds() if trial.duration else float("nan")
        self.console.print(
            f"  {self.label} trial {trial.number} {trial.state.name.lower()}: "
            f"{self.objective_name} {value} (best {'-' if best is None else f'{best.value:.4f}'}) "
            f"in {seconds:.0f}s"
        )
        if trial.state == optuna.trial.TrialState.FAIL:
            self.console.print(f"    [red]{trial.user_attrs.get('fail_reason', 'failed')}[/]")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        if best is None:
            return
        keep = {best.number} | {  # other workers' running trials may be saving theirs
            t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        }
        for path in self.checkpoints.glob("trial-*.pt"):
            if path.name not in {f"trial-{k:04d}.pt" for k in keep}:
                path.unlink(missing_ok=True)

    @property
    def _upload_checkpoints(self) -> bool:
        wanted = self.config.tracking.upload_checkpoints
        return not T.is_local_store(self.config.tracking.uri) if wanted is None else wanted

    def _save_checkpoint(self, number: int, state: dict, params: dict, score: float) -> Path:
        """Temp file + rename: a crash mid-write never leaves a half checkpoint behind."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        target = self.checkpoints / f"trial-{number:04d}.pt"
        fd, tmp = tempfile.mkstemp(dir=self.checkpoints, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(
                {"state_dict": state, "params": params, "trial": number, "score": score}, tmp
            )
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target

    def _best_checkpoint(self, best: optuna.trial.FrozenTrial) -> Path:
        """This worker's file if it ran the best trial, else the copy logged to MLflow."""
        import mlflow

        name = f"trial-{best.number:04d}.pt"
        path = self.checkpoints / name
        if path.is_file():
            return path
        run_id = best.user_attrs.get(RUN_ATTR)
        why = "the trial has no MLflow run"
        if run_id:
            try:
                return Path(
                    mlflow.artifacts.download_artifacts(
                        run_id=str(run_id),
                        artifact_path=f"checkpoint/{name}",
                        dst_path=tempfile.mkdtemp(prefix="pneumobench-ckpt-"),
                    )
                )
            except Exception as exc:
                why = f"{type(exc).__name__}: {str(exc)[:300]}"
        raise TrackingError(
            f"{self.label}: the checkpoint of the best trial ({best.number}) is neither at {path} "
            f"nor in its MLflow run {run_id} ({why}). With several workers on several machines set "
            "tracking.upload_checkpoints: true (the default for a tracking server); or delete "
            f"the study '{self.study_name}' to search again."
        )

    # --- the one look at the test set -----------------------------------------------------
    def _final_evaluation(self, study: optuna.Study) -> ModelOutcome:
        import mlflow

        best = best_trial(study)
        assert best is not None  # checked by the caller
        path = self._best_checkpoint(best)
        payload = torch.load(path, map_location="cpu", weights_only=True)
        protocol = self.protocol.model_copy(update=best.params)
        model = self.build(protocol.dropout)
        model.load_state_dict(payload["state_dict"])
        model.to(self.device)
        evaluation = self.config.evaluation
        result = evaluate_test(
            model, self.data, self.device, protocol.eval_batch_size, evaluation, self.config.seed
        )

        best_params = {f"best_{k}": v for k, v in best.params.items()}
        if best_params:
            try:
                mlflow.log_params(best_params)
            except Exception:  # re-evaluated with a new best: params are immutable, tags are not
                mlflow.set_tags(best_params)
        mlflow.log_metrics(
            {
                f"best_{self.objective_name}": best.value,
                "best_trial": best.number,
                **metrics_to_log(result),
            }
        )
        if evaluation.target_recall is not None:
            mlflow.set_tag("op_target_recall", str(evaluation.target_recall))
        mlflow.log_text(
            result.predictions_csv(self.data.test.keys, self.data.class_names),
            "predictions/test_predictions.csv",
        )
        for name, fig in figures(result, self.data.class_names, self.label).items():
            mlflow.log_figure(fig, name)
        self._log_model(model)
        if evaluation.seeds:
            self._repeat_with_seeds(protocol, result)
        mlflow.set_tags(
            {
                T.FINAL: "done",
                "pneumobench.final_trials": str(counted_trials(study)),
                "best_trial": str(best.number),
            }
        )
        m = result.metrics
        self.console.print(
            f"[bold green]{self.label}[/] best trial {best.number} "
            f"({self.objective_name} {best.value:.4f}) on test: recall {m['recall']:.3f}, "
            f"f1 {m['f1']:.3f}, accuracy {m['accuracy']:.3f}, roc_auc {m['roc_auc']:.3f}"
        )
        run = mlflow.active_run()
        return ModelOutcome(
            self.label, "evaluated", run.info.run_id if run else None, result.metrics
        )

    def _repeat_with_seeds(self, protocol: ProtocolConfig, searched_result: HeldOutResult) -> None:
        """Retrain the best hyperparameters with each seed; mean and spread of the test metrics.

        Each retrained model is a final model of its own: early-stopped on validation, then
        evaluated once on test, logged as a nested run ``<label>/seed-<s>``.
        """
        import mlflow
        import numpy as np

        per_seed: list[dict[str, float]] = []
        for seed in self.config.evaluation.seeds:
            if seed == self.config.seed:  # the searched model already is this seed's model
                per_seed.append(dict(searched_result.metrics))
                continue
            seed_everything(seed)
            model = create_model(
                self.entry.name,
                len(self.data.class_names),
                pretrained=False,
                dropout=protocol.dropout,
                image_size=self.config.data.image_size,
            )
            if self._meta["pretrained_source"] != "none":
                model.load_state_dict(self._initial_state)
                model.pretrained_source = self._meta["pretrained_source"]
            with mlflow.start_run(
                experiment_id=self.experiment_id,
                run_name=f"{self.label}/seed-{seed}",
                nested=True,
                tags={T.ROLE: "repeat", T.LABEL: self.label, "seed": str(seed)},
            ):
                mlflow.log_params(protocol.model_dump())
                self._fit(model, protocol, seed)
                repeat = evaluate_test(
                    model,
                    self.data,
                    self.device,
                    protocol.eval_batch_size,
                    self.config.evaluation.model_copy(update={"bootstrap_resamples": 100}),
                    seed,
                )
                mlflow.log_metrics(
                    {f"test_{k}": v for k, v in repeat.metrics.items() if math.isfinite(v)}
                )
            per_seed.append(dict(repeat.metrics))
            self.console.print(
                f"  {self.label} seed {seed}: test recall {repeat.metrics['recall']:.3f}, "
                f"f1 {repeat.metrics['f1']:.3f}"
            )
        summary: dict[str, float] = {"n_seeds": float(len(per_seed))}
        for key in per_seed[0]:
            values = np.array([m[key] for m in per_seed], dtype=float)
            if np.isfinite(values).all():
                summary[f"test_{key}_mean"] = float(values.mean())
                summary[f"test_{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        mlflow.log_metrics(summary)

    def _log_model(self, model: torch.nn.Module) -> None:
        import mlflow
        import numpy as np
        import timm
        import torchvision
        from mlflow.models import infer_signature

        import pneumobench

        model = model.cpu().eval()
        size = self.config.data.image_size
        example = np.zeros((1, 1, size, size), dtype=np.float32)
        with torch.inference_mode():
            out = torch.softmax(model(torch.from_numpy(example)), 1).numpy()
        mlflow.pytorch.log_model(
            model,
            name="model",
            signature=infer_signature(example, out),
            serialization_format="pickle",  # works for every backbone; pt2 export does not
            code_paths=[str(Path(pneumobench.__file__).parent)],
            pip_requirements=[
                f"torch=={torch.__version__.split('+')[0]}",
                f"torchvision=={torchvision.__version__.split('+')[0]}",
                f"timm=={timm.__version__}",
            ],
        )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
