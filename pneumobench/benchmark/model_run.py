"""One model's whole life: agree on its run, search, then the one final evaluation on test.

Each step lives in its own module; this one only puts them in order and logs their results:

1. ``train.starting_point.StartingPoint``: build the model once (fetching pretrained weights),
   the same start for every trial;
2. ``benchmark.parent``: the one MLflow parent run shared by every worker, described once;
3. ``search.budget`` + ``search.objective``: trials until the study holds ``n_trials`` finished;
4. ``benchmark.final``: whichever worker claims it restores the best checkpoint and evaluates it
   on test, then retrains the best hyperparameters per seed if asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

import optuna
import torch
from rich.console import Console

from pneumobench import profile
from pneumobench.benchmark import final
from pneumobench.benchmark.parent import agree_on_parent, check_same_data, describe_parent
from pneumobench.config import ExperimentConfig
from pneumobench.config.plan import ModelPlan
from pneumobench.data import PreparedData
from pneumobench.evaluate.held_out import metrics_to_log, validation_csv
from pneumobench.evaluate.saliency import NotExplainable
from pneumobench.progress import PlainProgress
from pneumobench.registry import get_architecture
from pneumobench.report.plots import final_model_figures, saliency_figure
from pneumobench.search.budget import admissions
from pneumobench.search.checkpoints import CheckpointStore
from pneumobench.search.coordination import Claims
from pneumobench.search.objective import TRIAL_FAILURES, TrialSetup, after_trial, objective
from pneumobench.search.recovery import (
    close_orphan_runs,
    fail_dead_local_trials,
    is_dead_local_worker,
    this_worker,
)
from pneumobench.search.study import best_trial, counted_trials, open_study
from pneumobench.serving.bundle import PARITY_IMAGES, ModelSpec
from pneumobench.serving.publish import (
    failure_panel,
    log_repeat_bundle,
    publish,
    saliency_panel,
)
from pneumobench.tracking import reader, writer
from pneumobench.tracking import schema as S
from pneumobench.tracking.models import registered_name
from pneumobench.tracking.store import is_local_store
from pneumobench.train.device import precision_fallback_note
from pneumobench.train.starting_point import StartingPoint


class Outcome(StrEnum):
    """What happened to one model in this process."""

    EVALUATED = "evaluated"  # searched (or resumed) and evaluated once on test
    SKIPPED = "skipped"  # a final evaluation was logged before (--force evaluates again)
    DELEGATED = "delegated"  # searched; another worker runs its test evaluation
    FAILED = "failed"


@dataclass
class ModelOutcome:
    """What happened to one model in this process."""

    label: str
    status: Outcome
    run_id: str | None = None
    message: str = ""
    looks: int = 0  # how often this model's test set has been evaluated (this look included)


@dataclass
class ExperimentContext:
    """What every model of one ``pneumobench run`` shares."""

    config: ExperimentConfig
    data: PreparedData
    experiment_id: str
    device: torch.device
    claims: Claims
    console: Console
    progress: PlainProgress
    force: bool = False


class ModelRun:
    """Search and final evaluation of one model, logged under one MLflow parent run."""

    def __init__(self, plan: ModelPlan, ctx: ExperimentContext, start: StartingPoint) -> None:
        self.plan, self.ctx, self.start = plan, ctx, start
        self.checkpoints = CheckpointStore(plan.checkpoint_dir)

    def run(self) -> ModelOutcome:
        """The model's whole life; skipped when searched and evaluated already (unless forced)."""
        plan, ctx = self.plan, self.ctx
        parent_id, must_describe = agree_on_parent(
            ctx.claims, ctx.experiment_id, plan, ctx.config.tracking.uri
        )
        parent = reader.get_run(parent_id)
        check_same_data(plan, parent, ctx.data)
        if parent.data.tags.get(S.FINAL) == S.FINAL_DONE and not ctx.force:
            done = counted_trials(open_study(ctx.config, plan, self.start.facts.pretrained))
            if done >= plan.n_trials:
                ctx.console.print(
                    f"[bold]{plan.label}[/]: already searched ({done} trials) and evaluated on "
                    f"test in run {parent_id}; skipping (--force evaluates again)"
                )
                return ModelOutcome(plan.label, Outcome.SKIPPED, parent_id)
        note = precision_fallback_note(plan.label, ctx.device, plan.protocol.precision)
        if note is not None:
            ctx.console.print(f"[yellow]{note}[/]")
        with writer.model_run(parent_id), profile.model(plan.label):
            if must_describe:
                with profile.stage("logging and registry"):
                    describe_parent(plan, self.start.facts, ctx.data, ctx.config, ctx.device)
            return self._search_and_evaluate(parent_id)

    # --- search ---------------------------------------------------------------------------------
    def _search_and_evaluate(self, parent_id: str) -> ModelOutcome:
        plan, console = self.plan, self.ctx.console
        study = open_study(self.ctx.config, plan, self.start.facts.pretrained)
        study.set_user_attr(S.STUDY_PARENT_ATTR, parent_id)
        reaped = fail_dead_local_trials(study)
        if reaped:
            console.print(
                f"[yellow]{plan.label}[/]: trial(s) {', '.join(map(str, reaped))} were cut off by "
                "a crash or kill: marked failed, their slots run again"
            )
        close_orphan_runs(study)
        with profile.stage("search bookkeeping", plan.label):  # ``fit`` inside: training
            self._search(study)
        close_orphan_runs(study)  # runs of trials whose worker died meanwhile
        if best_trial(study) is None:
            message = "no trial completed: see the trial runs' pneumobench.fail_reason tags"
            writer.mark_model_failed(message)
            console.print(f"[bold red]{plan.label}[/]: {message}")
            return ModelOutcome(plan.label, Outcome.FAILED, parent_id, message=message)
        return self._claim_final_evaluation(study, parent_id)

    def _search(self, study: optuna.Study) -> None:
        ctx, plan = self.ctx, self.plan
        setup = TrialSetup(
            plan=plan,
            start=self.start,
            data=ctx.data,
            augment=ctx.config.data.augment,
            device=ctx.device,
            checkpoints=self.checkpoints,
            tracking=ctx.config.tracking,
            upload_checkpoints=self._upload_checkpoints,
            experiment_id=ctx.experiment_id,
            progress=ctx.progress,
        )
        for admission in admissions(
            study,
            ctx.claims,
            plan.n_trials,
            timeout=ctx.config.search.timeout,
            poll_interval=ctx.config.search.poll_interval,
            on_wait=self._say_waiting,
        ):
            if admission.first:
                self._announce(admission.counted, admission.running)
                ctx.progress.model_started(
                    plan.label, plan.n_trials, admission.counted, plan.protocol.max_epochs
                )
            study.optimize(
                partial(objective, setup=setup, admission=admission),
                n_trials=1,
                callbacks=[partial(after_trial, setup=setup, console=ctx.console)],
                catch=TRIAL_FAILURES,
                gc_after_trial=True,
            )
        ctx.progress.model_finished(plan.label)

    @property
    def _upload_checkpoints(self) -> bool:
        tracking = self.ctx.config.tracking
        wanted = tracking.upload_checkpoints
        return not is_local_store(tracking.uri) if wanted is None else wanted

    def _announce(self, done: int, running: int) -> None:
        facts, plan = self.start.facts, self.plan
        weights = f"pretrained: {facts.pretrained_source}" if facts.pretrained else "from scratch"
        self.ctx.console.print(
            f"[bold]{plan.label}[/] ({facts.num_params / 1e6:.2f} M params, {weights}): "
            f"{plan.n_trials - done} trial(s) to run"
            + (f", {done} kept from before" if done else "")
            + (f", {running} running in other workers" if running else "")
        )
        protocol = plan.protocol
        if facts.pretrained and protocol.freeze_epochs >= protocol.max_epochs:
            self.ctx.console.print(
                f"  [yellow]{plan.label}: protocol.freeze_epochs ({protocol.freeze_epochs}) >= "
                f"max_epochs ({protocol.max_epochs}): the pretrained backbone never unfreezes, "
                "only the head trains. Lower freeze_epochs if that is not what you want.[/]"
            )

    def _say_waiting(self, running: int, counted: int) -> None:
        self.ctx.console.print(
            f"  [dim]{self.plan.label}: waiting for {running} trial(s) of other workers "
            f"({counted}/{self.plan.n_trials} finished)[/]"
        )

    # --- the one look at the test set --------------------------------------------------------
    def _claim_final_evaluation(self, study: optuna.Study, parent_id: str) -> ModelOutcome:
        """Exactly one worker evaluates: whichever claims ``final:<study>`` first."""
        plan, ctx = self.plan, self.ctx
        key, me = f"final:{plan.study_name}", this_worker()
        holder = ctx.claims.claim(key, me)
        if holder != me and not (
            (ctx.force or is_dead_local_worker(holder)) and ctx.claims.take_over(key, holder, me)
        ):
            ctx.console.print(
                f"[bold]{plan.label}[/]: the study's budget is spent; worker {holder} runs its "
                "final evaluation"
            )
            return ModelOutcome(plan.label, Outcome.DELEGATED, parent_id)
        try:
            tags = reader.get_run(parent_id).data.tags
            evaluated = int(tags.get(S.FINAL_TRIALS, "-1"))
            if (
                tags.get(S.FINAL) == S.FINAL_DONE
                and evaluated >= counted_trials(study)
                and not ctx.force
            ):
                ctx.console.print(
                    f"[bold]{plan.label}[/]: evaluated on test by another worker "
                    f"({evaluated} trials)"
                )
                return ModelOutcome(plan.label, Outcome.DELEGATED, parent_id)
            looks = self._evaluate(study)
            return ModelOutcome(plan.label, Outcome.EVALUATED, writer.active_run_id(), looks=looks)
        finally:
            ctx.claims.release(key, me)

    def _evaluate(self, study: optuna.Study) -> int:
        plan, ctx = self.plan, self.ctx
        best = best_trial(study)
        assert best is not None  # checked by the caller
        run_id = best.user_attrs.get(S.TRIAL_RUN_ATTR)
        state = self.checkpoints.load(
            best.number,
            fetch=lambda name: writer.download_artifact(str(run_id), f"{S.CHECKPOINT_DIR}/{name}"),
            where=f"the MLflow run {run_id} of {plan.label}'s trial {best.number}",
        )
        evaluation = ctx.config.evaluation
        looks = writer.count_test_evaluation()
        if looks > 1:
            ctx.console.print(
                f"  [yellow]{plan.label}: test set evaluated for the {looks}. time[/] (--force, "
                "or a search continued after a final evaluation); the count is logged and shown"
            )
        result = final.evaluate_best(
            plan, self.start, ctx.data, ctx.device, evaluation, best, state
        )
        with profile.stage("logging and registry", plan.label):
            self._log_final(result, best)
            self._publish(result)
        if plan.seeds:  # their ``fit`` is training, their predictions final evaluation
            with profile.stage("logging and registry", plan.label):
                self._repeat_with_seeds(result)
        writer.log_metrics(S.profile_metrics(profile.of_model(plan.label)))
        writer.mark_final_done(counted_trials(study), best.number)
        ctx.console.print(final.describe(plan.label, result, plan.objective, evaluation))
        return looks

    def _log_final(self, result: final.FinalModel, best: Any) -> None:
        plan, ctx = self.plan, self.ctx
        targets = ctx.config.evaluation.operating_points
        writer.log_final_evaluation(
            best_params=best.params,
            metrics={
                f"{S.BEST_PREFIX}{plan.objective}": best.value,
                S.BEST_TRIAL: best.number,
                **metrics_to_log(result.result),
            },
            tags=S.evaluation_tags(
                targets.sensitivity, targets.specificity, ctx.data.has_patient_ids
            ),
            predictions_csv=result.result.predictions_csv(ctx.data.test.keys, ctx.data.class_names),
            figures=final_model_figures(result.result, ctx.data.class_names, plan.label),
            val_predictions_csv=validation_csv(result.result, ctx.data),
        )

    def _spec(self, result: final.FinalModel, thresholds: dict[str, float], seed: int) -> ModelSpec:
        """How a final model (or one of its seed repeats) is rebuilt and decides."""
        plan, ctx = self.plan, self.ctx
        return ModelSpec(
            label=plan.label,
            registry_name=plan.registry_name,
            class_names=list(ctx.data.class_names),
            image_size=plan.image_size,
            resize=ctx.config.data.resize,
            dropout=result.protocol.dropout,
            thresholds=dict(thresholds),
            experiment=ctx.config.name,
            dataset_digest=ctx.data.digest,
            model_origin=get_architecture(plan.registry_name).origin,
            seed=seed,
            targets=ctx.config.evaluation.operating_points.model_dump(),
            tta=ctx.config.evaluation.tta,
        )

    def _publish(self, result: final.FinalModel) -> None:
        """The final model as a serving bundle, a pyfunc model and a registered version."""
        plan, ctx = self.plan, self.ctx
        spec = self._spec(result, result.result.thresholds, plan.seed)
        test = ctx.data.test
        test_images = test.images
        with profile.stage("saliency"):
            try:
                panel = saliency_panel(
                    result.model.cpu(),
                    spec,
                    test_images,
                    test.labels,
                    result.result.probs,
                    test.keys,
                    ctx.config.seed,
                )
            except NotExplainable as exc:
                ctx.console.print(f"  [dim]{plan.label}: no Grad-CAM panel: {exc}[/]")
            else:
                writer.log_saliency(panel, saliency_figure({plan.label: panel}, plan.label))
                failures = failure_panel(
                    result.model.cpu(),
                    spec,
                    test_images,
                    test.labels,
                    result.result.probs,
                    test.keys,
                    ctx.config.evaluation.failure_cases,
                )
                if failures is not None:
                    writer.log_failures(failures)
        version = publish(
            result.model,
            spec,
            test_images[:PARITY_IMAGES],
            metrics_to_log(result.result),
            str(writer.active_run_id()),
        )
        if version:
            ctx.console.print(
                f"  {plan.label}: registered as {registered_name(ctx.config.name)} version {version}"
            )

    def _repeat_with_seeds(self, result: final.FinalModel) -> None:
        plan, ctx = self.plan, self.ctx
        parent_id = str(writer.active_run_id())
        done = reader.finished_seed_repeats(ctx.experiment_id, parent_id, result.trial.number)
        repeats, members = [], []
        for repeat in final.repeat_with_seeds(
            plan,
            self.start,
            ctx.data,
            ctx.device,
            ctx.config.data.augment,
            ctx.config.evaluation,
            result,
            done,
        ):
            repeats.append(repeat)
            run_id = repeat.run_id or parent_id
            if repeat.result is not None:
                run_id = writer.log_seed_repeat(
                    ctx.experiment_id,
                    plan.label,
                    repeat.seed,
                    result.trial.number,
                    result.protocol.model_dump(),
                    metrics_to_log(repeat.result),
                    repeat.result.predictions_csv(ctx.data.test.keys, ctx.data.class_names),
                    validation_csv(repeat.result, ctx.data),
                    ctx.data.test_digest,
                )
                if repeat.model is not None:  # its weights: seed ensembles can then deploy
                    spec = self._spec(result, repeat.result.thresholds, repeat.seed)
                    log_repeat_bundle(run_id, repeat.model, spec, ctx.data.test.images)
            members.append(run_id)
            verb = "kept from before" if repeat.seed in done else "test"
            ctx.console.print(
                f"  {plan.label} seed {repeat.seed} ({verb}): sensitivity at specificity >= "
                f"{ctx.config.evaluation.operating_points.specificity:g} (test curve) "
                f"{repeat.metrics[S.ranked_name('recall')]:.3f}, ROC AUC "
                f"{repeat.metrics[S.ranked_name('roc_auc')]:.3f}"
            )
        writer.log_metrics(final.seed_summary(repeats, list(result.result.all_metrics())))
        writer.set_tag(S.SEED_MEMBERS, ",".join(members))
