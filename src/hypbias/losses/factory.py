"""The config's ``loss:`` section: validated from the losses' declarations, then built."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from hypbias._validation import check_choice, check_float
from hypbias.errors import ConfigError
from hypbias.hierarchy.tree import Hierarchy
from hypbias.labelspace import LabelSpace
from hypbias.losses import hxe, jsd, multilevel, soft
from hypbias.losses.options import OWNER, LossSpec

CROSS_ENTROPY = LossSpec(
    "ce",
    lambda hierarchy, spaces, label_smoothing, options: nn.CrossEntropyLoss(
        label_smoothing=label_smoothing),
    label_smoothing=True,
)

LOSSES: dict[str, LossSpec] = {spec.name: spec for spec in (
    CROSS_ENTROPY, hxe.SPEC, soft.SPEC, multilevel.SPEC, jsd.SPEC)}
"""Every loss the config can name, with its declared options (``LOSSES[name].options``)."""


def validate_loss_options(section: Mapping[str, Any] | None, *, label_smoothing: float = 0.0,
                          space_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Check a ``loss:`` section against its loss's declaration, without building anything.

    Parameters
    ----------
    section : mapping or None
        The ``loss:`` section, e.g. ``{"name": "hxe", "alpha": 0.5}``; None means ``ce``.
    label_smoothing : float
        ``train.label_smoothing``; losses that do not take it reject a non-zero value.
    space_names : sequence of str, optional
        The run's hypernym spaces, when known: losses that name spaces are checked against them.

    Returns
    -------
    dict
        ``name`` and every declared option, defaults filled in, values normalised.

    Raises
    ------
    ConfigError
        Naming the dotted key (``loss.alpha``, ...), the value and what is allowed.
    """
    cfg = dict(section or {})
    try:
        name = check_choice(cfg.pop("name", "ce"), "loss.name", OWNER, list(LOSSES))
        smoothing = check_float(label_smoothing, "train.label_smoothing", OWNER,
                                low=0.0, high=1.0)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    spec = LOSSES[name]
    for key in cfg:
        if key not in spec.options:
            allowed = ", ".join(sorted(spec.options)) or "none"
            raise ConfigError(f"'loss.{key}' is not an option of the {name!r} loss "
                              f"(options: {allowed}).")
    if smoothing and not spec.label_smoothing:
        raise ConfigError(f"'train.label_smoothing' = {smoothing!r} does not apply to the "
                          f"{name!r} loss; set it to 0.")
    options = {key: option.validate(cfg.get(key, option.default), f"loss.{key}")
               for key, option in spec.options.items()}
    if space_names is not None and spec.check_spaces is not None:
        spec.check_spaces(options, list(space_names))
    return {"name": name, **options}


def build_loss(section: Mapping[str, Any] | None, hierarchy: Hierarchy,
               spaces: Mapping[str, LabelSpace] | None = None, *,
               label_smoothing: float = 0.0) -> nn.Module:
    """The loss described by a config's ``loss:`` section.

    ==============  ==================================================================
    ``name``        options (defaults)
    ==============  ==================================================================
    ``ce``          none; ``label_smoothing`` (``train.label_smoothing``) applies
    ``hxe``         ``alpha`` (0.1), ``weighting`` ("depth" | "height_literal")
    ``soft``        ``beta`` (10.0), ``lca`` ("depth" | "height")
    ``multilevel``  ``spaces`` (names among ``spaces``; default all of them), ``weights``
                    (1.0: one float, or one per space), ``fine_weight`` (1.0);
                    ``label_smoothing`` applies to the fine term
    ``jsd``         ``views`` (3), ``weight`` (12.0); ``label_smoothing`` applies to the
                    cross-entropy term; the batch must hold every view (see
                    :class:`~hypbias.losses.JensenShannonCrossEntropy`)
    ==============  ==================================================================

    The defaults α = 0.1 and β = 10 lie in the ranges Bertinetto et al. 2020 explored; ``views``
    and ``weight`` are AugMix's.

    Parameters
    ----------
    section : mapping or None
        The ``loss:`` section; None means ``ce``.
    hierarchy : Hierarchy
        The dataset's hierarchy (used by ``hxe`` and ``soft``).
    spaces : mapping of str to LabelSpace, optional
        The run's hypernym spaces by name (``S4``, ``imagenet_s3``, ...), for ``multilevel``.
    label_smoothing : float
        ``train.label_smoothing``.

    Raises
    ------
    ConfigError
        As :func:`validate_loss_options`, with the run's spaces known.
    """
    spaces = dict(spaces or {})
    options = validate_loss_options(section, label_smoothing=label_smoothing,
                                    space_names=list(spaces))
    spec = LOSSES[options.pop("name")]
    return spec.build(hierarchy, spaces, float(label_smoothing), options)
