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


def missing_dependency(package: str, extra: str | None, purpose: str,
                       hint: str | None = None) -> MissingDependencyError:
    """Build the error for an absent package, with the command that installs it.

    ``extra`` names the hypbias extra that brings the package; None for a core dependency (a
    ``--no-deps`` install) or a package installed by other means, described by ``hint``.
    """
    how = hint or (f"pip install 'hypbias[{extra}]'  (or: pip install {package})" if extra
                   else f"pip install {package}")
    kind = "optional package" if extra or hint else "package"
    return MissingDependencyError(
        f"{purpose} needs the {kind} '{package}', which is not installed. Install it with: {how}"
    )
