"""PyTorch Lightning, tracked by HypbiasCallback. Usage: lightning_callback.py [RUN_DIR]"""
import sys

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hypbias as hb
from hypbias.integrations.lightning import HypbiasCallback

# 20 classes under 4 superclasses; a class's mean = its superclass's vector + its own
hierarchy = hb.Hierarchy.from_nested({f"group{g}": [f"class{g}_{k}" for k in range(5)] for g in range(4)})
gen = torch.Generator().manual_seed(0)
means = (2 * torch.randn(4, 1, 32, generator=gen) + torch.randn(4, 5, 32, generator=gen)).reshape(20, 32)


def dataset(per_class: int) -> TensorDataset:
    y = torch.arange(20).repeat_interleave(per_class)
    return TensorDataset(means[y] + 1.5 * torch.randn(len(y), 32, generator=gen), y)


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                 nn.Linear(64, 20))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # logits; the features are the input of the last nn.Linear

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], index: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.02, momentum=0.9)


torch.manual_seed(0)
train_set, val_set = dataset(50), dataset(20)
tracker = hb.Tracker.from_hierarchy(hierarchy, splits=("val", "train"), hypernyms=[4], random_draws=5,
                                    nc=True)
loaders = {"val": DataLoader(val_set, batch_size=500), "train": DataLoader(train_set, batch_size=500)}
callback = HypbiasCallback(tracker, sys.argv[1] if len(sys.argv) > 1 else "runs/lightning", loaders)
trainer = pl.Trainer(max_epochs=10, accelerator="cpu", callbacks=[callback], logger=False,
                     enable_checkpointing=False, enable_progress_bar=False)
trainer.fit(Classifier(), DataLoader(train_set, batch_size=50, shuffle=True))
print(*callback.run.summary["findings"], f"report: {callback.run.file('report.html')}", sep="\n")
