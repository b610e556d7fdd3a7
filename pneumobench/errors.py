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


def unsafe_load_reason(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in our words: torch's own message
    suggests loading it with ``weights_only=False``, which would run the file's pickled code."""
    text = str(exc)
    if "weights_only" in text or "Weights only load failed" in text:
        return "it holds pickled Python objects, not only tensors"
    return text.splitlines()[0][:200] if text else type(exc).__name__
