"""The data dir error, in a module of its own so that every data module can raise it without import cycles."""

__all__ = ["DataError"]


class DataError(ValueError):
    """A data dir is missing, incomplete, corrupt or does not match the config."""
