"""A bag-of-words text classifier over hashed word features (``hypbias.data.dbpedia``).

The CPU stand-in for the paper's BERT on DBPedia (App. C.1.4): a word-embedding layer applied to
the normalised hashed counts (a weighted mean of word vectors, as in fastText), optional ReLU
layers, and the linear head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hypbias._validation import check_float, check_int
from hypbias.models.base import Classifier
from hypbias.models.registry import register_model


class BagOfWords(Classifier):
    """``embed`` (linear, no bias) → dropout → ``fc1, act1, ...`` → ``head``.

    Parameters
    ----------
    num_classes : C.
    in_features : the number of hash buckets (the input width).
    embed_dim : width of the word embedding.
    hidden : widths of further ReLU layers; penultimate features have width ``hidden[-1]``, or
        ``embed_dim`` without hidden layers.
    dropout : dropout rate after the embedding (training only).

    Inputs of shape (N, in_features); features of shape (N, D); logits of shape (N, C).
    """

    def __init__(self, num_classes: int, in_features: int, embed_dim: int = 128,
                 hidden: Sequence[int] = (), dropout: float = 0.0) -> None:
        super().__init__()
        owner = "BagOfWords"
        check_int(num_classes, "num_classes", owner, low=1)
        check_int(in_features, "in_features", owner, low=1)
        check_int(embed_dim, "embed_dim", owner, low=1)
        self.embed = nn.Linear(in_features, embed_dim, bias=False)
        self.drop = nn.Dropout(check_float(dropout, "dropout", owner, low=0, high=1))
        widths = [embed_dim, *[check_int(h, "hidden", owner, low=1) for h in hidden]]
        self.body = nn.Sequential()
        for k in range(1, len(widths)):
            self.body.add_module(f"fc{k}", nn.Linear(widths[k - 1], widths[k]))
            self.body.add_module(f"act{k}", nn.ReLU())
        self.head = nn.Linear(widths[-1], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.drop(self.embed(x.flatten(1))))


@register_model("bow")
def bow(num_classes: int, in_features: int, embed_dim: int = 128, hidden: Sequence[int] = (),
        dropout: float = 0.0) -> BagOfWords:
    return BagOfWords(num_classes, in_features, embed_dim, hidden, dropout)
