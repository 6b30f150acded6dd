"""A Hugging Face Trainer, tracked by HypbiasCallback (a tiny BERT built from a config, nothing
downloaded). Usage: hf_trainer.py [RUN_DIR]"""
import sys

import torch
from torch.utils.data import DataLoader
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

import hypbias as hb
from hypbias.integrations.transformers import HypbiasCallback

# 20 classes under 4 superclasses; a sequence holds one token of its superclass, one of its class
hierarchy = hb.Hierarchy.from_nested({f"group{g}": [f"class{g}_{k}" for k in range(5)] for g in range(4)})
gen = torch.Generator().manual_seed(0)


def dataset(per_class: int) -> list[dict[str, torch.Tensor]]:
    rows = []
    for label in range(20):
        for _ in range(per_class):
            ids = torch.randint(30, 60, (12,), generator=gen)
            slots = 1 + torch.randperm(11, generator=gen)[:2]
            ids[0], ids[slots[0]], ids[slots[1]] = 1, 2 + label // 5, 6 + label
            rows.append({"input_ids": ids, "attention_mask": torch.ones(12, dtype=torch.long),
                         "labels": torch.tensor(label)})
    return rows


torch.manual_seed(0)
train_set, val_set = dataset(30), dataset(10)
model = BertForSequenceClassification(BertConfig(
    vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    max_position_embeddings=16, num_labels=20))
tracker = hb.Tracker.from_hierarchy(hierarchy, splits=("val", "train"), hypernyms=[4], random_draws=5,
                                    nc=True)
loaders = {"val": DataLoader(val_set, batch_size=200), "train": DataLoader(train_set, batch_size=200)}
callback = HypbiasCallback(tracker, sys.argv[1] if len(sys.argv) > 1 else "runs/hf_trainer", loaders)
args = TrainingArguments(output_dir="runs/hf_trainer_checkpoints", num_train_epochs=8, learning_rate=1e-2,
                         per_device_train_batch_size=32, logging_strategy="epoch", save_strategy="no",
                         report_to=[], use_cpu=True, disable_tqdm=True, seed=0)
Trainer(model=model, args=args, train_dataset=train_set, callbacks=[callback]).train()
print(*callback.run.summary["findings"], f"report: {callback.run.file('report.html')}", sep="\n")
