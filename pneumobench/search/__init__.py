"""The hyperparameter search: the Optuna study, its objective, the cross-worker trial budget,
the claims workers agree through, recovery of dead workers' trials, and trial checkpoints."""
