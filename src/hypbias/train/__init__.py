"""Training: the config loader, the loop and the Tracker."""

from hypbias.train.config import load_config
from hypbias.train.loop import TrainResult, train
from hypbias.train.tracker import Tracker, TrackerComponent

__all__ = ["Tracker", "TrackerComponent", "TrainResult", "load_config", "train"]
