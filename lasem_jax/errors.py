"""The errors raised for files that cannot be loaded as they are (models, checkpoints)."""


class LoadError(ValueError):
    """A saved tree, model or checkpoint that cannot be loaded as it is.

    Raised for a missing, truncated or malformed file, a type name that is not registered, an
    array that is missing or whose shape or dtype disagrees with what the skeleton or the config
    implies, a format this version does not read, and an import the caller did not allow. The
    message names the file and the problem (and the fix, where there is one).
    """


class ImportNotAllowedError(LoadError):
    """A saved config's import-path `model.arch` that this process has not imported.

    Loading it would run the module's code, so it needs the caller's consent.
    """


class MissingFileError(LoadError, FileNotFoundError):
    """A saved tree, model or checkpoint that is not there (or not complete)."""
