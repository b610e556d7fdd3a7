"""One benchmark run, in order: the loop over models, each model's life from its parent run to
its final test evaluation, and the ensemble rows (``pneumobench run``).

- ``experiment``: the loop over models;
- ``parent``: the one MLflow parent run shared by all workers, described once;
- ``model_run``: one model's life in order (search, final evaluation, publishing), logged;
- ``final``: the one test evaluation and the seed repeats (returns results, logs nothing);
- ``ensemble``: seed-ensemble and top-k soft-vote rows, chosen on validation.
"""
