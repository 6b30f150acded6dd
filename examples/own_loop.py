"""Your own loop, tracked: every label space's accuracy, NC1-NC4. Usage: own_loop.py [RUN_DIR]"""
import sys

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hypbias as hb
from hypbias.report import write_report

# 20 classes under 4 superclasses; a class's mean = its superclass's vector + its own
hierarchy = hb.Hierarchy.from_nested({f"group{g}": [f"class{g}_{k}" for k in range(5)] for g in range(4)})
gen = torch.Generator().manual_seed(0)
means = (2 * torch.randn(4, 1, 32, generator=gen) + torch.randn(4, 5, 32, generator=gen)).reshape(20, 32)


def dataset(per_class: int) -> TensorDataset:
    y = torch.arange(20).repeat_interleave(per_class)
    return TensorDataset(means[y] + 1.5 * torch.randn(len(y), 32, generator=gen), y)


train_set, val_set = dataset(50), dataset(20)
train_loader = DataLoader(train_set, batch_size=50, shuffle=True, generator=gen)
train_eval = DataLoader(train_set, batch_size=500)  # in order, for the neural-collapse statistics
val_loader = DataLoader(val_set, batch_size=500)

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 20))
optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
tracker = hb.Tracker.from_hierarchy(hierarchy, splits=("val", "train"), hypernyms=[4], random_draws=5,
                                    nc=True)
tracker.bind(model)  # the penultimate features are the input of the last nn.Linear

for epoch in range(11):  # epoch 0: before any parameter update
    losses = []
    for x, y in train_loader if epoch else []:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    tracker.evaluate(model, val_loader, split="val")
    tracker.evaluate(model, train_eval, split="train")  # both NC passes
    accuracy = tracker.end_epoch(epoch, log={"loss": sum(losses) / len(losses) if losses else float("nan")})
    print(f"epoch {epoch}: val {accuracy['val']:.1f}%")

run = tracker.save(sys.argv[1] if len(sys.argv) > 1 else "runs/own_loop", model=model)
print(*run.summary["findings"], f"report: {write_report(run)}", sep="\n")
