"""Training throughput and tracker overhead, measured side by side in one run.

Prints, for the embedded default (MLP on the synthetic data, CPU or GPU):

* training images/s;
* the Tracker's own overhead: an evaluation pass feeding ``Tracker.update`` (one ``bincount`` per
  batch) against the same pass computing plain accuracy, as a share of the epoch;
* the cost of evaluating every epoch at all (what the paper's per-epoch analysis needs), against
  training alone.

With CUDA it also times the CIFAR ResNet-18 on CIFAR-shaped data resident on the device, with
crop+flip on the device, bf16 autocast and channels_last: images/s per configuration.

Usage: python benchmarks/bench_train.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from hypbias import Tracker
from hypbias.data import TensorSplit
from hypbias.data.augment import make_augment
from hypbias.train.config import load_config
from hypbias.train.loop import (
    DeviceMode,
    _Step,
    batches,
    build_bundle,
    build_model,
    build_optimizer,
    make_loss,
    make_scheduler,
    train_one_epoch,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_default(device: torch.device, repeats: int) -> None:
    config = load_config(None)
    bundle = build_bundle(config)
    model = build_model(config.model, bundle).to(device)
    tc = config.train
    optimizer = build_optimizer(model, tc)
    steps = -(-len(bundle.train) // tc.batch_size)
    step = _Step(model, model, optimizer, make_scheduler(optimizer, tc, steps * (repeats + 1)),
                 make_loss(config, bundle, None), None, None, DeviceMode())
    gen = torch.Generator().manual_seed(0)

    def train_epoch() -> None:
        order = torch.randperm(len(bundle.train), generator=gen)
        train_one_epoch(step, batches(bundle.train, tc.batch_size, device=device, indices=order),
                        steps, progress=False)

    splits = config.track.splits
    bs = config.track.eval_batch_size

    @torch.no_grad()
    def eval_plain() -> None:
        model.eval()
        for split in splits:
            correct = torch.zeros((), dtype=torch.long, device=device)
            for x, y in batches(bundle.split(split), bs, device=device):
                correct += (model(x).argmax(1) == y).sum()
            correct.item()
        model.train()

    tracker = Tracker(bundle.num_classes, splits=splits)

    @torch.no_grad()
    def eval_tracked() -> None:
        model.eval()
        for split in splits:
            for x, y in batches(bundle.split(split), bs, device=device):
                logits, feats = model.forward_with_features(x)
                tracker.update(logits, y, split=split, features=feats)
        tracker.end_epoch(tracker.next_epoch)
        model.train()

    t_train = _timed(train_epoch, device, repeats)
    t_plain = _timed(eval_plain, device, repeats)
    t_tracked = _timed(eval_tracked, device, repeats)
    n = len(bundle.train)
    print(f"embedded default on {device} ({torch.get_num_threads()} threads), median of {repeats}:")
    print(f"  training epoch        {t_train * 1e3:8.1f} ms   {n / t_train:10.0f} images/s")
    print(f"  evaluation, plain     {t_plain * 1e3:8.1f} ms   (splits {', '.join(splits)})")
    print(f"  evaluation, Tracker   {t_tracked * 1e3:8.1f} ms")
    epoch_plain = t_train + t_plain
    epoch_tracked = t_train + t_tracked
    print(f"  tracker overhead      {100 * (epoch_tracked / epoch_plain - 1):+8.2f} % of an epoch "
          f"(tracked epoch / epoch with plain evaluation = {epoch_tracked / epoch_plain:.3f})")
    print(f"  per-epoch evaluation  {100 * t_tracked / t_train:8.1f} % of training time "
          "(the price of measuring every epoch)")


def bench_resnet_gpu(repeats: int, quick: bool) -> None:
    from hypbias.models import create

    device = torch.device("cuda")
    n = 10_000 if quick else 50_000
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    split = TensorSplit(x, torch.randint(0, 100, (n,)))
    print(f"\nCIFAR ResNet-18 on {torch.cuda.get_device_name()} ({n} CIFAR-shaped images, batch 256):")
    for amp, channels_last in ((False, False), (True, False), (True, True)):
        model = create("cifar_resnet18", 100).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        augment = make_augment("crop_flip", torch.Generator(device=device).manual_seed(0))
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()

        def epoch(model=model, opt=opt, augment=augment, autocast=autocast, channels_last=channels_last):
            for xb, yb in batches(split, 256, device=device, indices=torch.randperm(n)):
                xb = augment(xb).float().div_(255)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with autocast:
                    loss = torch.nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        t = _timed(epoch, device, max(1, repeats // 2))
        print(f"  bf16={amp!s:5} channels_last={channels_last!s:5}  {n / t:10.0f} images/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and images")
    args = parser.parse_args()
    repeats = 2 if args.quick else args.repeats
    bench_default(torch.device("cpu"), repeats)
    if torch.cuda.is_available():
        bench_default(torch.device("cuda"), repeats)
        bench_resnet_gpu(repeats, args.quick)


if __name__ == "__main__":
    main()
