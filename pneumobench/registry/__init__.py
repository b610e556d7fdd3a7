"""Candidate architectures: ``register_model``, ``list_models``, ``create_model``."""

from pneumobench.registry.core import (
    Architecture,
    Backbone,
    check_model_name,
    create_model,
    get_architecture,
    list_models,
    register_model,
)

__all__ = [
    "Architecture",
    "Backbone",
    "check_model_name",
    "create_model",
    "get_architecture",
    "list_models",
    "register_model",
]
