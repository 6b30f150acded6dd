"""Training: the :class:`Tracker` (usable in any loop), its components, the loop and checkpoints.

Importing this package loads only the tracker; the loop is :mod:`hypbias.train.loop` and the
config loader :mod:`hypbias.train.config`.
"""

from hypbias.train.tracker import Tracker, TrackerComponent

__all__ = ["Tracker", "TrackerComponent"]
