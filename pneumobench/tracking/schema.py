"""Every name pneumobench writes to MLflow (and the Optuna attributes that link the two).

This module is the contract between the writers (``pneumobench run``) and the readers
(leaderboard, report, recovery): no tag, param, metric or artifact name is spelt anywhere else.

Naming rule for metrics, stated once:

- ``val_<metric>`` per epoch in a trial run; ``best_val_<metric>`` the best epoch's value;
- ``test_<metric>`` on a final model's parent run, at the argmax decision;
- ``test_at_<point>_<metric>`` at an operating point chosen on validation (``threshold_<point>``;
  points and what they serve: ``benchmark/operating_points.py``), ``val_at_<point>_<metric>`` the
  same threshold on validation;
- ``test_<metric>_ci_low`` / ``_ci_high`` its bootstrap interval (patients resampled);
- ``test_<metric>_mean`` / ``_std`` across seed repeats (``n_seeds`` of them).

``<metric>`` is one of ``metrics.LEADERBOARD_METRICS`` (plus per-class and ``binary_`` names for
three classes).
"""

from __future__ import annotations

# --- run roles and identity (tags) -------------------------------------------------------------
ROLE = "pneumobench.role"
ROLE_MODEL = "model"  # the parent run of one candidate: its search and final evaluation
ROLE_TRIAL = "trial"  # one Optuna trial, nested under its model's run
ROLE_REPEAT = "repeat"  # the best hyperparameters retrained with another seed
ROLE_SUMMARY = "summary"  # the experiment's report
LABEL = "pneumobench.label"
STUDY = "pneumobench.study"
TRIAL_NUMBER = "pneumobench.trial_number"
TRIAL_STATE = "pneumobench.trial_state"
FAIL_REASON = "pneumobench.fail_reason"

# --- the final evaluation's state (tags on the model run) ---------------------------------------
FINAL = "pneumobench.final_evaluation"
FINAL_DONE = "done"
FINAL_FAILED = "failed"
FINAL_TRIALS = "pneumobench.final_trials"  # finished trials when the final model was chosen
BEST_TRIAL = "best_trial"
TEST_EVALUATIONS = "pneumobench.test_evaluations"  # times this model's test set was looked at
OP_TARGET_SENSITIVITY = "op_target_sensitivity"
OP_TARGET_SPECIFICITY = "op_target_specificity"
BOOTSTRAP_UNIT = "bootstrap_unit"  # "patient" where the data has patient ids, else "image"
SEED_MEMBERS = "pneumobench.seed_runs"  # runs holding each seed's final model, comma-separated
MODELS = "models"  # on the summary run: the models its report covers

# --- what produced the numbers (tags on the model run) ------------------------------------------
MODEL = "model"  # the registry name
FAMILY = "family"
NUM_PARAMS = "num_params"
PRETRAINED_SOURCE = "pretrained_source"
TASK = "task"
IMAGE_SIZE = "image_size"
DATA_SOURCE = "data_source"
DATASET_DIGEST = "dataset_digest"
DATASET_DIGEST_CHARS = 16  # of the digest, as MLflow dataset inputs carry it (36 at most)
DATA_PATH = "data_path"
SEED = "seed"
DEVICE = "device"
PRECISION = "precision"  # what the training steps computed in: fp32, bf16 or fp16
GIT_COMMIT = "git_commit"
VERSION = "pneumobench_version"
VERSIONS = "versions"
CLASS_NAMES = "class_names"
OPTUNA_STORAGE = "pneumobench.optuna_storage"  # the study's storage URL, password redacted
MODEL_ORIGIN = "model_origin"  # the registry entry's origin: pneumobench, or the plugin's file
PROVENANCE_TAGS = (VERSIONS, DEVICE, GIT_COMMIT, VERSION, DATASET_DIGEST, SEED, TASK)

# --- params --------------------------------------------------------------------------------------
PARAM_OBJECTIVE = "search.objective"
DATA_PARAM_PREFIX = "data."  # data.n_train, data.patients_val, data.n_test_pneumonia, ...

# --- metrics -------------------------------------------------------------------------------------
TEST_PREFIX = "test_"
BEST_PREFIX = "best_"
THRESHOLD_PREFIX = "threshold_"
N_SEEDS = "n_seeds"
BEST_EPOCH = "best_epoch"
TEST_ECE = "test_ece"
N_TEST_EVALUATIONS = "test_evaluations"  # the count above as a metric (leaderboard, report)


def test_metric(name: str) -> str:
    """``recall`` -> ``test_recall``; already prefixed names stay as they are."""
    return name if name.startswith(TEST_PREFIX) else f"{TEST_PREFIX}{name}"


def ci_names(key: str) -> tuple[str, str]:
    """The interval's metric names of ``key`` (``test_recall`` -> ``test_recall_ci_low``, ...)."""
    return f"{key}_ci_low", f"{key}_ci_high"


def seed_names(key: str) -> tuple[str, str]:
    """The seed-repeat summary names of ``key`` (``test_recall_mean``, ``test_recall_std``)."""
    return f"{key}_mean", f"{key}_std"


# --- artifacts -----------------------------------------------------------------------------------
PREDICTIONS = "predictions/test_predictions.csv"
VAL_PREDICTIONS = "predictions/val_predictions.csv"  # the final model's, thresholds come from it
ENSEMBLE_MEMBERS = "pneumobench.ensemble_members"  # labels of an ensemble row's models
FAMILY_ENSEMBLE = "ensemble"  # the family tag of every ensemble row (it trained nothing)
ENSEMBLE_KIND = "pneumobench.ensemble_kind"  # ENSEMBLE_SEEDS or ENSEMBLE_TOP_K
ENSEMBLE_SEEDS = "seeds"  # one model's seed repeats averaged
ENSEMBLE_TOP_K = "top_k"  # the k best models (by validation ROC AUC) averaged
ENSEMBLE_OF = "pneumobench.ensemble_of"  # a seed ensemble's model label
ENSEMBLE_RUNS = "pneumobench.ensemble_runs"  # run ids holding the members' predictions
SPLIT = "data/split.csv"
SKIPPED_IMAGES = "data/skipped_images.txt"
LEAKS = "data/leaks.csv"  # patients, near-duplicates and identical files across splits
CHECKPOINT_DIR = "checkpoint"
MODEL_DIR = "model"
REPORT_DIR = "report"
SALIENCY_PANEL = "saliency/panel.npz"  # Grad-CAM maps of the experiment's test-image panel
SALIENCY_FIGURE = "plots/saliency.png"
SERVING_DIR = "serving"  # spec.json, weights.pt (state dict), parity_images.npy
EXPORT_DIR = "export"  # files written by `pneumobench export`

# --- the Model Registry --------------------------------------------------------------------------
CHAMPION_METRIC = "pneumobench.champion_metric"  # the leaderboard metric the champion won by

# --- links between Optuna and MLflow (Optuna user attributes) ------------------------------------
STUDY_PARENT_ATTR = "mlflow_parent_run_id"
TRIAL_RUN_ATTR = "mlflow_run_id"
TRIAL_WORKER_ATTR = "worker"
TRIAL_FAIL_ATTR = "fail_reason"
