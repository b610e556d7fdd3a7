"""One model's run, cut along its life (each module one step; ``model_run`` puts them in order):

- ``experiment``: the loop over models (``pneumobench run``);
- ``plan``: the frozen ``ModelPlan`` resolved once from config + model entry;
- ``weights``: build once, the same start for every trial and seed;
- ``parent``: the one MLflow parent run shared by all workers;
- ``budget``: the cross-worker trial budget (admissions, the lock passed explicitly);
- ``trial``: the Optuna objective;
- ``checkpoints``: atomic save, keep the best, fetch from MLflow;
- ``final``: the one test evaluation and the seed repeats (returns results, logs nothing);
- ``model_run``: one model's life in order, logging through ``pneumobench.tracking``.
"""

from pneumobench.benchmark.run.experiment import run_experiment
from pneumobench.benchmark.run.model_run import ModelOutcome

__all__ = ["ModelOutcome", "run_experiment"]
