"""Using a final model: the bundle that rebuilds it, publishing to MLflow, predict, export."""
