"""Errors a user can fix. The CLI prints them without a traceback and exits with code 2."""


class PneumobenchError(Exception):
    """Base class: the message alone must tell the user what is wrong and what to do."""


class ConfigError(PneumobenchError):
    """The experiment configuration (file, key or command-line override) is invalid."""


class DataError(PneumobenchError):
    """The data set is missing, malformed or cannot be labelled."""


class ModelError(PneumobenchError):
    """A registry entry cannot be found or built (unknown name, missing pretrained weights)."""


class TrackingError(PneumobenchError):
    """MLflow or Optuna storage cannot be reached or holds nothing to show."""
