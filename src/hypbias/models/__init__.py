"""Models: a registry of built-in families and adapters, all exposing features and a linear head."""

from hypbias.models import adapters, bow, cnn, mlp, resnet_cifar  # noqa: F401  (registration)
from hypbias.models.adapters import wrap_classifier
from hypbias.models.base import Classifier
from hypbias.models.layers import LayerFeatures, extract_features
from hypbias.models.registry import create, list_models, register_model, register_prefix

__all__ = ["Classifier", "LayerFeatures", "create", "extract_features", "list_models", "register_model",
           "register_prefix", "wrap_classifier"]
