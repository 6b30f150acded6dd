"""Every CUDA path of hypbias in a few minutes, with the figures written into RESULTS.md.

On a machine with CUDA (``make gpu-check``):

1. the training loop on CIFAR-shaped data resident on the GPU (50 000 train / 10 000 val images,
   100 classes under 20 superclasses), CIFAR ResNet-18, 2 epochs per variant, images/s of the
   second epoch: bf16 autocast + channels_last + crop/flip on the device; the same with
   ``torch.compile``; with the EMA of the weights; with AutoAugment on the device; with neural
   collapse tracked on the train split (the seconds its two evaluation passes add);
2. ``Tracker.evaluate`` (any-loop API, NC's two passes) on the GPU under bf16 autocast;
3. the ``torchvision:resnet50`` and ``timm:resnet50`` adapters: a bf16 channels_last training step
   (images/s at 224 px) and logits = head(features) in float32;
4. NCCL on every GPU present: a process per GPU evaluates its shard with ``Tracker.evaluate``;
   the all-reduced confusion matrix and NC rows must equal one process's over all the data
   exactly, and one DistributedDataParallel step must leave the same weights on every rank;
5. cuML UMAP (when installed) against umap-learn on the CPU.

Without CUDA it prints why and exits 0. A failed check is reported in its row and makes the exit
status 1. Usage: python benchmarks/gpu_check.py [--results benchmarks/RESULTS.md] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import math
import os
import platform
import re
import socket
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SECTION = "## GPU check (benchmarks/gpu_check.py)"


# ---------------------------------------------------------------- data and helpers


def cifar_like(n_train: int, n_val: int, device: torch.device):
    """A DatasetBundle of random 3×32×32 images in [0, 1] whose 100 classes sit under 20
    superclasses: each class's images scatter around its own mean image (learnable, not CIFAR)."""
    from hypbias.data.base import DatasetBundle, TensorSplit
    from hypbias.hierarchy.tree import Hierarchy

    hierarchy = Hierarchy.from_nested({f"super{s}": [f"class{s}_{k}" for k in range(5)]
                                       for s in range(20)})
    gen = torch.Generator(device=device).manual_seed(0)
    means = torch.rand(100, 3, 32, 32, generator=gen, device=device)

    def split(n: int) -> TensorSplit:
        y = torch.arange(n, device=device) % 100  # every class present
        x = (means[y] + 0.3 * torch.randn(n, 3, 32, 32, generator=gen, device=device)).clamp_(0, 1)
        return TensorSplit(x, y)

    return DatasetBundle("cifar-shaped", split(n_train), split(n_val), list(hierarchy.classes),
                         hierarchy, (3, 32, 32), info={"normalize": "unit"})


def synced(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 3) -> float:
    """Median seconds of ``fn`` after ``warmup`` calls, synchronised with the device."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synced(device)
        start = time.perf_counter()
        fn()
        synced(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


# ---------------------------------------------------------------- 1. the training loop


def loop_variants(device: torch.device, quick: bool) -> list[tuple[str, str]]:
    from hypbias.labelspace.spaceset import build_spaces
    from hypbias.train.components import ComponentContext, build_components
    from hypbias.train.config import load_config
    from hypbias.train.loop import train

    n_train, n_val = (10_000, 2_000) if quick else (50_000, 10_000)
    bundle = cifar_like(n_train, n_val, device)
    base = ["train.epochs=2", "train.batch_size=512", "train.lr=0.2", f"train.device={device}",
            "train.amp=true", "train.channels_last=true", "train.augment=crop_flip",
            "track.splits=[val]", "track.eval_batch_size=1024", "spaces.hypernyms=[20]",
            "spaces.random_draws=2", "data.normalize=unit"]
    variants = [
        ("bf16 + channels_last", []),
        ("+ torch.compile", ["train.compile=true"]),
        ("+ EMA of the weights (0.999)", ["train.ema=0.999"]),
        ("+ AutoAugment (ImageNet policy) on the device", ["train.augment=autoaugment"]),
        ("+ NC tracked on the train split", ["track.splits=[val, train]", "nc.every=1"]),
    ]
    rows, reference = [], None
    for name, extra in variants:
        config = load_config("cifar100_resnet18", [*base, *extra])
        spaces = build_spaces(bundle.hierarchy, [20], 2, 0)
        context = ComponentContext(bundle, spaces, config.track.splits, config.seed,
                                   config.train.epochs, config.origins)
        components = build_components(config.components, context)
        start = time.perf_counter()
        result = train(config, bundle=bundle, components=components, progress=False)
        total = time.perf_counter() - start
        last, first = result.log[-1], result.log[-2]
        speed = last["images_per_s"]
        epoch_seconds = last["seconds"] - first["seconds"]
        evaluation = epoch_seconds - n_train / speed
        reference = reference or speed
        figure = (f"{speed:,.0f} images/s ({speed / reference:.2f}x), evaluation "
                  f"{evaluation:.2f} s/epoch, val acc {last['acc_val']:.1f}%, {total:.0f} s in all")
        if "compile" in name:
            figure += f"; first epoch {result.log[1]['seconds'] - result.log[0]['seconds']:.0f} s " \
                      "(compilation)"
        rows.append((f"CIFAR ResNet-18 epoch, {name}", figure))
    return rows


# ---------------------------------------------------------------- 2. Tracker.evaluate


def tracker_on_gpu(device: torch.device, quick: bool) -> list[tuple[str, str]]:
    import hypbias as hb
    from hypbias.models import create

    bundle = cifar_like(5_000 if quick else 20_000, 1_000, device)
    model = create("cifar_resnet18", 100).to(device).to(memory_format=torch.channels_last)
    tracker = hb.Tracker.from_hierarchy(bundle.hierarchy, ("train",), hypernyms=[20],
                                        random_draws=2, nc=True)
    x, y = bundle.train.x, bundle.train.y
    batches = [(x[i:i + 1024], y[i:i + 1024]) for i in range(0, len(y), 1024)]

    def run() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            tracker.evaluate(model, batches, "train")
        tracker.end_epoch(tracker.next_epoch, model)

    seconds = timed(run, device, repeats=3, warmup=1)
    nc4 = [r["value"] for r in tracker.rows if r["metric"] == "nc4" and r["space"] == "S20"]
    return [("Tracker.evaluate, CIFAR ResNet-18, bf16, NC in H, S20 and 2 random draws",
             f"{len(y) / seconds:,.0f} images/s over both passes ({len(y)} images, "
             f"{seconds:.2f} s); NC4(S20) = {nc4[-1]:.3f}")]


# ---------------------------------------------------------------- 3. adapters


def adapters(device: torch.device, quick: bool) -> list[tuple[str, str]]:
    from hypbias.errors import MissingDependencyError
    from hypbias.models import create

    rows = []
    for name in ("torchvision:resnet50", "timm:resnet50"):
        try:
            torch.manual_seed(0)
            model = create(name, 1000).to(device).to(memory_format=torch.channels_last)
        except MissingDependencyError as err:
            rows.append((f"adapter {name}", f"skipped: {err}"))
            continue
        rows.append((f"adapter {name}, bf16 training step at 224 px",
                     _adapter_figures(model, device, 64 if quick else 128)))
    return rows


def _adapter_figures(model: torch.nn.Module, device: torch.device, batch: int) -> str:
    """Images/s of a bf16 channels_last SGD step, and logits = head(features) in float32."""
    x = torch.rand(batch, 3, 224, 224, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    seconds = timed(step, device, repeats=10)
    model.eval()
    with torch.no_grad():
        logits, feats = model.forward_with_features(x[:16].float())
        gap = (logits - model.head(feats)).abs().max().item()
    return (f"{batch / seconds:,.0f} images/s (batch {batch}); D = {feats.shape[1]}, "
            f"max |logits - head(features)| = {gap:.1e}")


# ---------------------------------------------------------------- 4. NCCL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nccl_worker(rank: int, world: int, port: int, out: str) -> None:
    """One process per GPU: its shard through Tracker.evaluate, then one DDP step; rank 0 saves
    the all-reduced results to ``out``."""
    import torch.distributed as dist

    import hypbias as hb
    from hypbias.models import create

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world)
    try:
        device = torch.device("cuda", rank)
        bundle = cifar_like(2_048, 256, device)
        torch.manual_seed(0)
        model = create("cifar_resnet18", 100).to(device)
        tracker = hb.Tracker.from_hierarchy(bundle.hierarchy, ("train",), hypernyms=[20],
                                            random_draws=2, nc=True)
        x, y = bundle.train.x, bundle.train.y
        batches = [(x[i:i + 256], y[i:i + 256]) for i in range(0, len(y), 256)]
        tracker.evaluate(model, batches, "train", shard=True)
        tracker.end_epoch(0, model)
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank])
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        part = slice(rank * 128, (rank + 1) * 128)
        torch.nn.functional.cross_entropy(ddp(x[part]), y[part]).backward()
        opt.step()
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        spread = flat.clone()
        dist.all_reduce(spread, op=dist.ReduceOp.MAX)
        low = flat.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        if rank == 0:
            torch.save({"confusion": torch.from_numpy(tracker.confusion("train")[0]),
                        "rows": list(tracker.rows), "weight_gap": float((spread - low).max())}, out)
    finally:
        dist.destroy_process_group()


def nccl(device: torch.device, quick: bool) -> list[tuple[str, str]]:
    import tempfile

    import numpy as np
    import torch.multiprocessing as mp

    import hypbias as hb
    from hypbias.models import create

    world = torch.cuda.device_count()
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "rank0.pt")
        mp.start_processes(_nccl_worker, args=(world, _free_port(), out), nprocs=world, join=True,
                           start_method="spawn")
        found = torch.load(out, weights_only=True)
    bundle = cifar_like(2_048, 256, device)  # the same draws as every worker's
    torch.manual_seed(0)
    model = create("cifar_resnet18", 100).to(device)
    single = hb.Tracker.from_hierarchy(bundle.hierarchy, ("train",), hypernyms=[20],
                                       random_draws=2, nc=True)
    x, y = bundle.train.x, bundle.train.y
    single.evaluate(model, [(x[i:i + 256], y[i:i + 256]) for i in range(0, len(y), 256)], "train")
    single.end_epoch(0, model)
    same = np.array_equal(found["confusion"].numpy(), single.confusion("train")[0])
    shared = {(r["space"], r["metric"]): r["value"] for r in found["rows"]}
    worst = max(abs(r["value"] - shared[r["space"], r["metric"]]) / max(abs(r["value"]), 1e-12)
                for r in single.rows if math.isfinite(r["value"]))
    if not same or found["weight_gap"] != 0.0:
        raise RuntimeError(f"NCCL results differ from one process's: confusion equal {same}, "
                           f"largest weight difference between ranks {found['weight_gap']}")
    note = "" if world > 1 else " (one GPU: the collectives run, nothing crosses devices)"
    return [(f"NCCL over {world} GPU(s): sharded Tracker.evaluate + DDP step",
             f"confusion equal to one process's; NC rows max rel. diff {worst:.1e}; weights equal "
             f"on every rank{note}")]


# ---------------------------------------------------------------- 5. cuML UMAP


def cuml_umap(device: torch.device, quick: bool) -> list[tuple[str, str]]:
    if importlib.util.find_spec("cuml") is None:
        return [("cuML UMAP", "skipped: cuML is not installed (RAPIDS, conda or pip cuml-cu12)")]
    from hypbias.analysis.embedding import embed

    n = 5_000 if quick else 20_000
    gen = torch.Generator(device=device).manual_seed(0)
    centres = torch.randn(50, 256, generator=gen, device=device) * 4
    feats = centres[torch.randint(0, 50, (n,), generator=gen, device=device)]
    feats = feats + torch.randn(n, 256, generator=gen, device=device)
    start = time.perf_counter()
    embed(feats, dim=10, seed=0, backend="cuml")
    gpu = time.perf_counter() - start
    small = feats[:2_000].cpu()
    start = time.perf_counter()
    embed(small, dim=10, seed=0, backend="umap-learn")
    cpu = time.perf_counter() - start
    return [(f"cuML UMAP, {n} x 256 -> 10", f"{gpu:.1f} s ({n / gpu:,.0f} points/s); umap-learn "
             f"on the CPU: {2_000 / cpu:,.0f} points/s on 2 000 points")]


# ---------------------------------------------------------------- report


def machine() -> str:
    n = torch.cuda.device_count()
    names = sorted({torch.cuda.get_device_name(i) for i in range(n)})
    return (f"{n} x {', '.join(names)}, CUDA {torch.version.cuda}, torch {torch.__version__}, "
            f"{os.cpu_count()} CPU cores, Python {platform.python_version()}")


def write_results(path: Path, rows: list[tuple[str, str]], quick: bool) -> None:
    """Replace (or append) the GPU-check section of ``path``."""
    date = datetime.date.today().isoformat()
    lines = [SECTION, "", f"Machine: {machine()}. Taken on {date}"
             f"{' with --quick (smaller data)' if quick else ''}. Reproduce with `make gpu-check`.",
             "", "| check | result |", "| --- | --- |",
             *(f"| {check} | {result.replace('|', '/')} |" for check, result in rows), ""]
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    block = "\n".join(lines) + "\n"
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else \
        text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


CHECKS: list[tuple[str, Callable[[torch.device, bool], list[tuple[str, str]]]]] = [
    ("training loop", loop_variants),
    ("Tracker.evaluate", tracker_on_gpu),
    ("adapters", adapters),
    ("NCCL", nccl),
    ("cuML UMAP", cuml_umap),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md",
                        help="the file whose GPU-check section is replaced")
    parser.add_argument("--quick", action="store_true", help="smaller data (a smoke test)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(f"gpu-check: skipped, no CUDA device here (torch {torch.__version__}); "
              f"{args.results} is unchanged.")
        return 0
    device = torch.device("cuda", 0)
    torch.backends.cudnn.benchmark = True
    print(f"gpu-check on {machine()}", flush=True)
    rows: list[tuple[str, str]] = []
    failed = False
    for name, check in CHECKS:
        start = time.perf_counter()
        try:
            found = check(device, args.quick)
        except Exception as err:
            traceback.print_exc()
            found = [(name, f"FAILED: {type(err).__name__}: {' '.join(str(err).split())[:200]}")]
            failed = True
        for row in found:
            print(f"  {row[0]}: {row[1]}", flush=True)
        print(f"  ({name}: {time.perf_counter() - start:.0f} s)", flush=True)
        rows.extend(found)
        with contextlib.suppress(Exception):
            torch.cuda.empty_cache()
    write_results(args.results, rows, args.quick)
    print(f"written to {args.results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
