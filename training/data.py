"""Per-epoch data loading that is a pure function of (seed, epoch, rank), so a resumed run sees
exactly the batches an uninterrupted one would, with any number of loader workers, also from the
middle of an epoch. Two samplings (``--sampling``):

- with replacement (the release): an epoch of N draws; draw k has its own generator, keyed by
  (seed, epoch, k) (``datasets.vkitti.sample_rng``), which first picks the sample uniformly among
  the N, then draws its augmentation, in the release's order. Under torchrun rank r takes the draws
  r, r + W, ... (W processes), so the ranks' draws are disjoint and independent.
- permutation: every sample once per epoch in an order seeded by (seed, epoch), the augmentation
  keyed by (seed, epoch, index).
"""
import atexit
import multiprocessing
import random
import signal
from typing import Iterator, List, Sequence, Tuple

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from constants import SAMPLING_PERMUTATION, SAMPLING_WITH_REPLACEMENT
from utils.runtime import worker_init

from .distributed import DistInfo

_EXIT_HOOK = False


def primary_indices(dataset: Dataset, seed: int, epoch: int, dist: DistInfo) -> List[int]:
    """This rank's share of the epoch's shuffled order (DistributedSampler: seeded by seed + epoch,
    padded so that every rank gets as many samples)."""
    sampler = DistributedSampler(dataset, num_replicas=dist.world_size, rank=dist.rank, shuffle=True,
                                 seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    return list(sampler)


def draw_positions(size: int, dist: DistInfo) -> List[int]:
    """This rank's draws of an epoch of ``size`` draws: every W-th, from its rank on, padded like
    ``primary_indices`` so that every rank gets ceil(size / W)."""
    per_rank = -(-size // dist.world_size)
    return list(range(dist.rank, per_rank * dist.world_size, dist.world_size))


class DrawnWithReplacement(Dataset):
    """Item k is draw k of the epoch: a sample picked uniformly, with replacement, by the draw's
    own generator, which then draws the sample's augmentation (the release's order)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, draw: int) -> dict:
        rng = self.dataset.rng(draw)
        return self.dataset.sample(rng.randint(0, len(self.dataset) - 1), rng)


def cycled_indices(size: int, count: int, seed: int, epoch: int, dist: DistInfo, stream: str) -> List[int]:
    """``count`` indices for this rank from shuffled passes over a dataset of ``size`` items: a
    secondary dataset (stage 1's style images) follows the primary one's epoch length."""
    rng = random.Random(f"{stream}-order:{seed}:{epoch}")
    order: List[int] = []
    while len(order) < count * dist.world_size:
        perm = list(range(size))
        rng.shuffle(perm)
        order.extend(perm)
    return order[:count * dist.world_size][dist.rank::dist.world_size]


def training_worker_init(worker_id: int) -> None:
    """Loader workers ignore SIGINT and SIGTERM. A Ctrl-C, or a cluster scheduler's SIGTERM, reaches
    the whole process group, and the training process needs its workers until it has finished the
    current iteration and saved its state; it then shuts them down itself."""
    worker_init(worker_id)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _kill_children() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # torch's handler would report each death as an error
    for child in multiprocessing.active_children():
        child.kill()
        child.join()


def kill_workers_at_exit() -> None:
    """At exit, SIGKILL the loader workers still alive (an exception's traceback can keep their
    loader alive), since multiprocessing's own exit handler would SIGTERM them, which they ignore,
    and then wait for them forever. Registered once, after multiprocessing's handler so it runs first."""
    global _EXIT_HOOK
    if not _EXIT_HOOK:
        atexit.register(_kill_children)
        _EXIT_HOOK = True


def _loader(dataset: Dataset, indices: Sequence[int], batch_size: int, workers: int, seed: int, epoch: int,
            device: torch.device) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=indices, num_workers=workers,
                      pin_memory=device.type == "cuda", drop_last=False, persistent_workers=False,
                      worker_init_fn=training_worker_init,
                      generator=torch.Generator().manual_seed(seed + epoch))


def to_device(batches: Sequence[dict], device: torch.device) -> List[dict]:
    """The batches with their tensors on ``device`` (asynchronously from pinned memory)."""
    return [{key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
             for key, value in batch.items()} for batch in batches]


class EpochData:
    """The batches of one epoch from ``datasets`` (the first defines its length), starting at batch
    ``start``; each item is a tuple with one batch per dataset. ``sampling`` is one of
    ``constants.SAMPLINGS``."""

    def __init__(self, datasets: Sequence[Dataset], batch_size: int, workers: int, seed: int, epoch: int,
                 dist: DistInfo, device: torch.device, start: int = 0,
                 sampling: str = SAMPLING_WITH_REPLACEMENT) -> None:
        if sampling == SAMPLING_PERMUTATION:
            first = primary_indices(datasets[0], seed, epoch, dist)
            streams = [first] + [cycled_indices(len(dataset), len(first), seed, epoch, dist, f"dataset{i}")
                                 for i, dataset in enumerate(datasets[1:], 1)]
            sources = list(datasets)
        elif sampling == SAMPLING_WITH_REPLACEMENT:
            first = draw_positions(len(datasets[0]), dist)
            streams = [first] * len(datasets)  # each dataset draws from its own stream of generators
            sources = [DrawnWithReplacement(dataset) for dataset in datasets]
        else:
            raise ValueError(f"unknown sampling {sampling!r}")
        self.num_batches = -(-len(first) // batch_size)
        self.start = min(start, self.num_batches)
        skip = self.start * batch_size
        for dataset in datasets:
            dataset.set_epoch(epoch)
        self.loaders = [_loader(source, stream[skip:], batch_size, workers, seed, epoch, device)
                        for source, stream in zip(sources, streams)]

    def __len__(self) -> int:
        return self.num_batches - self.start

    def __iter__(self) -> Iterator[Tuple[dict, ...]]:
        return zip(*self.loaders)
