"""Numbers about predictions: metrics, validation-chosen operating points, bootstraps and
paired tests, a final model's held-out results, and Grad-CAM maps. Nothing here trains or logs."""
