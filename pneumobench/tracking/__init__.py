"""MLflow, in one place: the names (``schema``), where runs go (``store``), writing runs
(``writer``), reading them back (``reader``) and what produced them (``provenance``).

No other module of pneumobench imports mlflow.
"""
