"""Candidate architectures, cut as timm cuts its registry:

- ``table``: the name -> builder table, ``register_model``, ``Backbone`` (a leaf);
- ``factory``: ``create_model``, ``get_architecture``, ``list_models`` (the thin door);
- ``weights``: the one place weight-loading failures become clear errors;
- ``classifier``: the one head every candidate gets, normalization inside the model;
- ``plugins``: your own models (files, modules, installed packages);
- ``builtin`` and one module per family: ``custom``, ``timm_models``, ``torchvision_models``,
  ``xrv_models``.
"""

from pneumobench.registry.factory import (
    check_model_name,
    create_model,
    get_architecture,
    list_models,
)
from pneumobench.registry.table import Architecture, Backbone, register_model

__all__ = [
    "Architecture",
    "Backbone",
    "check_model_name",
    "create_model",
    "get_architecture",
    "list_models",
    "register_model",
]
