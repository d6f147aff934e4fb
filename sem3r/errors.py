"""Errors that describe a problem with the user's input.

Every error raised for bad input (a missing file, a corrupt image, mismatched sizes, NaN poses, ...)
is a :class:`Sem3RError` with a one-line message naming the problem. The CLI prints that line and
exits with code 2; library users can catch the class.
"""


class Sem3RError(ValueError):
    """Bad or unusable input; the message is one line and names the offending file or value."""


class FormatVersionError(Sem3RError):
    """A saved Scene was written by a format version this release cannot read."""


class MissingDependencyError(Sem3RError, ImportError):
    """An optional dependency (an extra) is needed for the requested feature."""


def require(module: str, extra: str, feature: str):
    """Import an optional module or raise a clear :class:`MissingDependencyError`.

    Args:
        module: importable module name, e.g. ``"av"``.
        extra: the sem3r extra that installs it, e.g. ``"video"``.
        feature: what the user asked for, used in the message.

    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the optional package '{module}': pip install 'sem3r[{extra}]' ({exc})"
        ) from None
