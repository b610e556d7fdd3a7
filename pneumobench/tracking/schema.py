"""Every name pneumobench writes to MLflow (and the Optuna attributes that link the two).

This module is the contract between the writers (``pneumobench run``) and the readers
(leaderboard, report, recovery): no tag, param, metric or artifact name is spelt anywhere else.

Naming rule for metrics, stated once:

- ``val_<metric>`` per epoch in a trial run; ``best_val_<metric>`` the best epoch's value;
- ``test_<metric>`` on a final model's parent run, at the argmax decision;
- ``test_at_<point>_<metric>`` at an operating point chosen on validation (``threshold_<point>``;
  points and what they serve: ``evaluate/operating_points.py``), ``val_at_<point>_<metric>`` the
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
ROLE_EXTERNAL = "external"  # a final model on an external test set, nested under its model run
EXTERNAL_NAME = "pneumobench.external_name"  # the external test set's name (--name)
EXTERNAL_PATH = "pneumobench.external_path"  # where it was read from
EXTERNAL_CONTEXT = "external:"  # + name: the context of its MLflow dataset input
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
TEST_EVALUATIONS = "pneumobench.test_evaluations"  # looks at its test set this run made
OP_TARGET_SENSITIVITY = "op_target_sensitivity"
OP_TARGET_SPECIFICITY = "op_target_specificity"
BOOTSTRAP_UNIT = "bootstrap_unit"  # BOOTSTRAP_PATIENT where the data has patient ids
BOOTSTRAP_PATIENT = "patient"
BOOTSTRAP_IMAGE = "image"
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
TEST_DIGEST = "pneumobench.test_digest"  # the test split's content: looks are counted by it
VALIDATION_NOTE = "pneumobench.validation_note"  # what validation is, where it is weak
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
HARDWARE = "hardware"  # the GPU's model (or the CPU's)
CUDA_VERSION = "cuda_version"
CUDNN_VERSION = "cudnn_version"
TF32 = "tf32"  # whether CUDA matmuls and convolutions could use TF32
PROVENANCE_TAGS = (
    VERSIONS,
    DEVICE,
    HARDWARE,
    CUDA_VERSION,
    CUDNN_VERSION,
    TF32,
    GIT_COMMIT,
    VERSION,
    DATASET_DIGEST,
    SEED,
    TASK,
)


def hardware_tags(facts: dict[str, str]) -> dict[str, str]:
    """``train.device.hardware``'s facts under their tag names."""
    names = {"name": HARDWARE, "cuda": CUDA_VERSION, "cudnn": CUDNN_VERSION, "tf32": TF32}
    return {names[k]: v for k, v in facts.items() if k in names}


# --- params --------------------------------------------------------------------------------------
PARAM_OBJECTIVE = "search.objective"
DATA_PARAM_PREFIX = "data."  # data.n_train, data.patients_val, data.n_test_pneumonia, ...
PARAM_PATIENTS_CHECKED = "data.patients_checked"  # "True" where splits were checked by patient
PARAM_SKIPPED_IMAGES = "data.skipped_images"
PARAM_LEAK_SHARED_PATIENTS = "data.leak_shared_patients"
PARAM_LEAK_NEAR_DUPLICATES = "data.leak_near_duplicate_pairs"
PARAM_LEAK_IDENTICAL_GROUPS = "data.leak_identical_groups"


def data_param(name: str) -> str:
    """A data-summary param: ``n_train`` -> ``data.n_train`` (see ``PreparedData.summary``)."""
    return f"{DATA_PARAM_PREFIX}{name}"


def split_count_param(split: str, class_name: str | None = None) -> str:
    """``data.n_<split>`` (images in a split), or ``data.n_<split>_<class>``."""
    return data_param(f"n_{split}" + (f"_{class_name}" if class_name else ""))


def split_patients_param(split: str) -> str:
    """``data.patients_<split>``: patients in a split (where the data has patient ids)."""
    return data_param(f"patients_{split}")


# --- metrics -------------------------------------------------------------------------------------
TRAIN_LOSS = "train_loss"  # per epoch in a trial run, beside the val_<metric> values
VAL_LOSS = "val_loss"
VAL_F1 = "val_f1"
# what a search can optimize: per-epoch validation numbers of every trial
VAL_METRICS = (
    VAL_F1,
    "val_recall",
    "val_precision",
    "val_accuracy",
    "val_auc",
    "val_specificity",
    VAL_LOSS,
)
TEST_PREFIX = "test_"
VAL_PREFIX = "val_"
BEST_PREFIX = "best_"
BEST_VAL_PREFIX = "best_val_"
VAL_AT_PREFIX = "val_at_"
THRESHOLD_PREFIX = "threshold_"
N_SEEDS = "n_seeds"
BEST_EPOCH = "best_epoch"
N_TEST_EVALUATIONS = "test_evaluations"  # the count above as a metric (leaderboard, report)


# --- what the leaderboard ranks: two blocks -----------------------------------------------------
# 1. Discrimination, read off each model's own test curves: no threshold carries over, so no
#    model can climb by moving one (``evaluate/weighted.curve_reads`` states the reading rule).
CURVE_READS = ("roc_sens_at_spec", "roc_spec_at_sens", "pr_precision_at_sens", "pr_best_f1")
# 2. The operating points chosen on validation and applied once to test (``threshold_<point>``):
POINTS = ("sens", "spec", "f1", "acc")
DEPLOYED_POINT = "spec"  # where predict, export and serving decide by default
# leaderboard metric -> (operating point, metric at it); None: block 1, no validation threshold
RANKED: dict[str, tuple[str | None, str]] = {
    "recall": (None, "roc_sens_at_spec"),
    "specificity": (None, "roc_spec_at_sens"),
    "precision": (None, "pr_precision_at_sens"),
    "f1": (None, "pr_best_f1"),
    "accuracy": (None, "accuracy"),  # at argmax: the field's comparable number (MedMNIST's ACC)
    "roc_auc": (None, "roc_auc"),
    "pr_auc": (None, "pr_auc"),
    "recall@spec": ("spec", "recall"),
    "specificity@sens": ("sens", "specificity"),
    "precision@sens": ("sens", "precision"),
    "f1@maxF1": ("f1", "f1"),
    "accuracy@maxAcc": ("acc", "accuracy"),
}
DISCRIMINATION = tuple(m for m, (point, _) in RANKED.items() if point is None)
AT_VALIDATION_THRESHOLD = tuple(m for m, (point, _) in RANKED.items() if point is not None)


def point_metric(point: str, metric: str) -> str:
    """``at_spec_recall``: ``metric`` at operating point ``point`` (without the test_ prefix)."""
    return f"at_{point}_{metric}"


def threshold_name(point: str) -> str:
    """The MLflow metric holding a point's validation-chosen threshold (``threshold_spec``)."""
    return f"{THRESHOLD_PREFIX}{point}"


def ranked_name(metric: str) -> str:
    """The logged name (without test_) of what the leaderboard ranks for ``metric``."""
    point, name = RANKED[metric]
    return name if point is None else point_metric(point, name)


def val_metric(name: str) -> str:
    """``f1`` -> ``val_f1``; ``at_spec_specificity`` -> ``val_at_spec_specificity``."""
    return f"{VAL_PREFIX}{name}"


def data_tags(
    task: str,
    image_size: int,
    source: str,
    digests: tuple[str, str],
    class_names: tuple[str, ...],
    validation_note: str,
) -> dict[str, str]:
    """What data produced a run's numbers: the tags every model and ensemble run carries
    (``digests``: the whole data's, the test split's)."""
    tags = {
        TASK: task,
        IMAGE_SIZE: str(image_size),
        DATA_SOURCE: source,
        DATASET_DIGEST: digests[0],
        TEST_DIGEST: digests[1],
        CLASS_NAMES: ",".join(class_names),
    }
    if validation_note:
        tags[VALIDATION_NOTE] = validation_note[:4900]  # MLflow tag values: 5000 characters
    return tags


def evaluation_tags(
    target_sensitivity: float, target_specificity: float, has_patient_ids: bool
) -> dict[str, str]:
    """How a final evaluation judged: operating-point targets and the bootstrap's unit."""
    return {
        OP_TARGET_SENSITIVITY: str(target_sensitivity),
        OP_TARGET_SPECIFICITY: str(target_specificity),
        BOOTSTRAP_UNIT: BOOTSTRAP_PATIENT if has_patient_ids else BOOTSTRAP_IMAGE,
    }


def test_metric(name: str) -> str:
    """``recall`` -> ``test_recall``; already prefixed names stay as they are."""
    return name if name.startswith(TEST_PREFIX) else f"{TEST_PREFIX}{name}"


def internal_metric(name: str) -> str:
    """On an external run: the internal test's value (``roc_auc`` -> ``internal_roc_auc``)."""
    return f"internal_{name}"


def shift_metric(name: str) -> str:
    """On an external run: external minus internal (``roc_auc`` -> ``shift_roc_auc``)."""
    return f"shift_{name}"


PROFILE_PREFIX = "profile_"  # profile_<stage>_seconds: where a model's time went


def profile_metrics(stages: dict[str, float]) -> dict[str, float]:
    """``{stage: seconds}`` under metric names (``final evaluation`` ->
    ``profile_final_evaluation_seconds``)."""
    return {
        f"{PROFILE_PREFIX}{name.replace(' ', '_')}_seconds": float(seconds)
        for name, seconds in stages.items()
    }


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
CONFIG_ARTIFACT = "config/resolved.yaml"  # the validated config, every default filled in
SALIENCY_PANEL = "saliency/panel.npz"  # Grad-CAM maps of the experiment's test-image panel
SALIENCY_FIGURE = "plots/saliency.png"
FAILURE_PANEL = "saliency/failures.npz"  # the most confident errors at the deployed threshold
SHOW_PREFIX = "show."  # display tags of the MLflow runs view: value [interval], 3 decimals
MODEL_CARD = "model_card"  # folder of the champion's model card, one file per version
SERVING_DIR = "serving"  # spec.json, weights.pt (state dict), parity_images.npy
EXPORT_DIR = "export"  # files written by `pneumobench export`

# --- the Model Registry --------------------------------------------------------------------------
CHAMPION_METRIC = "pneumobench.champion_metric"  # the leaderboard metric the champion won by

# --- links between Optuna and MLflow (Optuna user attributes) ------------------------------------
STUDY_PARENT_ATTR = "mlflow_parent_run_id"
TRIAL_RUN_ATTR = "mlflow_run_id"
TRIAL_WORKER_ATTR = "worker"
TRIAL_FAIL_ATTR = "fail_reason"


# the discrimination block, the default (recall) first, and the deployed point's sensitivity
# and specificity: the UI's view, the metrics of a registered version
RANKED_METRICS = (
    *(test_metric(ranked_name(m)) for m in ("recall", "roc_auc", "specificity", "f1", "accuracy")),
    test_metric(ranked_name("pr_auc")),
    test_metric(point_metric(DEPLOYED_POINT, "recall")),
    test_metric(point_metric(DEPLOYED_POINT, "specificity")),
)


def all_names() -> list[str]:
    """Every name this module declares (the structure script checks none is spelt elsewhere)."""
    names = [v for k, v in globals().items() if k.isupper() and isinstance(v, str)]
    names += [*VAL_METRICS, *RANKED_METRICS, *(threshold_name(p) for p in POINTS)]
    names += [ranked_name(m) for m, (point, _) in RANKED.items() if point is not None]
    return names
