"""Exception types. Every message is one line that names the file, field or parameter and the value."""

from __future__ import annotations


class HypbiasError(Exception):
    """Base class of every error raised on purpose by hypbias."""


class HierarchyError(HypbiasError, ValueError):
    """A class hierarchy is malformed: a cycle, an unknown parent, a duplicate or missing class."""


class ConfigError(HypbiasError, ValueError):
    """A configuration file or ``--set`` override has an unknown key or a bad value."""


class DataError(HypbiasError, ValueError):
    """A dataset on disk is missing or malformed."""


class MissingDependencyError(HypbiasError, ImportError):
    """An optional dependency is not installed; the message gives the pip command."""


def missing_dependency(package: str, extra: str, purpose: str) -> MissingDependencyError:
    """Build the error for an absent optional package, with the command that installs it."""
    return MissingDependencyError(
        f"{purpose} needs the optional package '{package}', which is not installed. "
        f"Install it with: pip install 'hypbias[{extra}]'  (or: pip install {package})"
    )
