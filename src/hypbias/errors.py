"""Exception types. Every message is one line that names the file, field or parameter and the value."""

from __future__ import annotations


class HypbiasError(Exception):
    """Base class of every error raised on purpose by hypbias.

    ``exit_code`` is the command line's exit status for it (DESIGN.md §4): 2, bad input.
    """

    exit_code = 2


class HierarchyError(HypbiasError, ValueError):
    """A class hierarchy is malformed: a cycle, an unknown parent, a duplicate or missing class."""


class ConfigError(HypbiasError, ValueError):
    """A configuration file or ``--set`` override has an unknown key or a bad value."""


class DataError(HypbiasError, ValueError):
    """A dataset on disk is missing or malformed."""


class TrainingDiverged(HypbiasError):
    """Training stopped at an epoch whose loss or outputs were not finite (exit code 3); what was
    measured before it is kept."""

    exit_code = 3


class TrainingInterrupted(HypbiasError):
    """Training was interrupted (Ctrl-C) at ``epoch`` (exit code 130)."""

    exit_code = 130

    def __init__(self, epoch: int, message: str | None = None) -> None:
        super().__init__(message or f"interrupted at epoch {epoch}")
        self.epoch = epoch


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
