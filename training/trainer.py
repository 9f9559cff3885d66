"""The training loop shared by the three stages: epochs, TensorBoard logging, checkpoints,
resuming, per-epoch validation, Ctrl-C and divergence.

Resuming: ``last.pth`` holds the trainable networks, optimisers, schedulers, loss scaler, counters
and RNG states. It is written at the end of every epoch and when a stop is requested (Ctrl-C or
SIGTERM: the current iteration finishes first, then the state is saved at that batch). Since the
batches of an epoch depend only on (seed, epoch, --sampling), a resumed run continues at the next batch of the
interrupted epoch and produces the same weights as a run that was never stopped (bit for bit on
CPU; on CUDA up to the non-determinism of the GPU kernels).
"""
import argparse
import json
import random
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
from tensorboardX import SummaryWriter
from torch.optim import lr_scheduler
from torchvision.utils import make_grid
from tqdm import tqdm

from constants import DEPTH_SCALE
from datasets import DatasetError
from datasets.registry import build_eval_dataset
from evaluation.loop import evaluate, make_loader
from evaluation.protocol import default_protocol
from evaluation.results import non_finite_metrics
from utils.checkpoint import CheckpointError, atomic_save, remove_interrupted_saves
from utils.errors import UserError
from utils.runtime import seed_everything

from .data import EpochData, kill_workers_at_exit, to_device
from .distributed import (DistInfo, any_rank, average_gradients, broadcast_from_main, init_distributed,
                          mean_over_ranks, shutdown_distributed)
from .precision import MixedPrecision
from .stages import Batch, Stage, build_stage
from .state import STATE_FORMAT, read_training_state, rng_state, set_rng_state

LAST_STATE = "last.pth"
BEST_DIR = "best"
# Flags whose change on --resume alters the run; the state's values win where it holds them
# (optimiser and scheduler states), so a change is reported.
RESUME_CHECKED_FLAGS = ("syn_dataset", "syn_root", "syn_train_datafile", "batchSize", "loadSize", "sampling", "no_flip",
                        "no_rotation", "no_augment", "lr", "lr_decay_iters", "lambda_w", "hyper_w",
                        "style_dim", "recon_x_w", "recon_c_w", "recon_s_w", "gan_w", "seed",
                        "real_dataset", "real_root", "real_datafile", "num_labeled", "labeled_seed", "syn_weight")
PLATEAU = {"factor": 0.5, "patience": 5, "threshold": 0.01}


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN/inf; nothing was saved after it."""


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; raised before the backward pass, so the weights are intact."""


def check_finite(losses: Dict[str, torch.Tensor], dist: DistInfo, device: torch.device) -> None:
    """Raise NonFiniteLoss on every rank when a loss is NaN/inf on any rank (before backward)."""
    bad = [name for name, value in losses.items() if not torch.isfinite(value).all()]
    if any_rank(bool(bad), dist, device):
        values = ", ".join(f"{n}={losses[n].item():g}" for n in bad) or "on another process"
        raise NonFiniteLoss(f"non-finite loss ({values})")


def train_step(stage: Stage, batch: Batch, amp: MixedPrecision, dist: DistInfo,
               device: torch.device) -> Tuple[Dict[str, float], Any]:
    """One iteration: each of the stage's updates in turn runs ``forward`` and ``loss`` (under
    autocast; the depth losses cast to float32 themselves), checks the losses on every rank, then
    backward, gradient averaging over the ranks and the optimiser step. Returns the loss values of
    all updates and the last update's outputs."""
    values: Dict[str, float] = {}
    for update in stage.updates():
        with amp.autocast():
            outputs = update.forward(batch)
            losses = update.loss(outputs, batch)
        check_finite(losses, dist, device)
        optimizer = stage.optimizers[update.optimizer]
        params = [p for group in optimizer.param_groups for p in group["params"]]
        optimizer.zero_grad(set_to_none=True)
        amp.step(losses[update.objective], optimizer, lambda: average_gradients(params, dist))
        values.update((name, value.item()) for name, value in losses.items())
    return values, outputs


class StopSignal:
    """SIGINT/SIGTERM ask the loop to stop after the current iteration; another one more than
    ``GRACE_S`` later aborts at once. Repeats within the grace period are ignored: under torchrun a
    Ctrl-C reaches each worker twice, from the terminal and forwarded by the launcher."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    GRACE_S = 2.0

    def __init__(self, verbose: bool = True) -> None:
        self.verbose = verbose
        self.signum: Optional[int] = None
        self.received_at = 0.0
        self.previous: Dict[int, object] = {}

    def _handle(self, signum: int, _frame) -> None:
        if self.signum is not None:
            if time.monotonic() - self.received_at > self.GRACE_S:
                raise KeyboardInterrupt
            return
        self.signum, self.received_at = signum, time.monotonic()
        if self.verbose:
            print("\nstopping after this iteration; the state will be saved (signal again to abort)",
                  file=sys.stderr)

    def __enter__(self) -> "StopSignal":
        for s in self.SIGNALS:
            self.previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def make_scheduler(optimizer: torch.optim.Optimizer, args: argparse.Namespace):
    """Stepped once per epoch. step: x0.5 every --lr_decay_iters epochs (the release). plateau: x0.5
    after 5 epochs without a 1% improvement of the epoch metric. lambda: linear to 0 at --epochs."""
    if args.lr_policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=args.lr_decay_iters, gamma=0.5)
    if args.lr_policy == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", **PLATEAU)
    epochs = args.epochs
    return lr_scheduler.LambdaLR(optimizer, lambda epoch: max(0.0, 1.0 - epoch / epochs))


class Trainer:
    """Builds the stage the flags name (or restores it from --resume) and trains it to --epochs."""

    def __init__(self, args: argparse.Namespace, dist: DistInfo, device: torch.device) -> None:
        self.args = args
        self.dist = dist
        self.device = device
        self.main = dist.is_main
        self.checkpoint_dir = Path(args.checkpoint_dir)
        self._check_run_folder()
        state = self._read_resume_state()
        if args.seed is None:
            args.seed = broadcast_from_main(random.SystemRandom().randrange(2 ** 31), dist)
        seed_everything(args.seed)
        self.amp = MixedPrecision(args.amp, device, warn=self.main)
        self.val = self._build_validation() if args.val_dataset and self.main else None
        self.stage = build_stage(args, device, dist, self.warn)
        self.schedulers = {name: make_scheduler(opt, args) for name, opt in self.stage.optimizers.items()}
        self.epoch, self.batch, self.iteration = args.start_epoch, 0, 0
        self.loss_sum, self.loss_count = 0.0, 0
        self.best: Optional[dict] = None
        if state is None:
            self._advance_schedulers(args.start_epoch)
        self.writer = SummaryWriter(args.log_dir) if self.main else None
        if state is not None:
            self._restore(state)  # last: the RNG states must follow every draw made while building

    # ---------------------------------------------------------------- set-up
    def info(self, message: str) -> None:
        if self.main:
            print(message, flush=True)

    def warn(self, message: str) -> None:
        if self.main:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    def _check_run_folder(self) -> None:
        """Before anything is built or written: a new run never replaces another run's state, and the
        temporary files of a save that was killed mid-write are removed."""
        last = self.checkpoint_dir / LAST_STATE
        if self.args.resume is None and not self.args.overwrite and last.exists():
            raise UserError(f"--checkpoint_dir {self.checkpoint_dir} holds another run's {LAST_STATE}; pass "
                            f"--resume to continue that run, --overwrite to replace it, or another "
                            f"--checkpoint_dir")
        if self.main:
            for folder in (self.checkpoint_dir, self.checkpoint_dir / BEST_DIR):
                for path in remove_interrupted_saves(folder):
                    self.warn(f"removed {path}, left by a save that was interrupted")

    def _read_resume_state(self) -> Optional[dict]:
        args = self.args
        if args.resume is None:
            return None
        self.resume_path = Path(args.resume) if args.resume else self.checkpoint_dir / LAST_STATE
        state = read_training_state(self.resume_path, args.train_stage)
        saved = state["args"]
        if saved["lr_policy"] != args.lr_policy:
            raise CheckpointError(f"--resume: {self.resume_path} was trained with --lr_policy "
                                  f"{saved['lr_policy']}; resume with the same policy")
        if args.seed is None:
            args.seed = saved["seed"]
        changed = [f"--{k} {saved.get(k)} -> {getattr(args, k)}" for k in RESUME_CHECKED_FLAGS
                   if saved.get(k) != getattr(args, k)]
        if changed:
            self.warn(f"resuming with changed flags ({'; '.join(changed)}); the saved optimiser and "
                      f"scheduler states keep their learning rate")
        return state

    def _advance_schedulers(self, epochs: int) -> None:
        """Put the schedule at --start-epoch (epochs counted as already done)."""
        for _ in range(epochs):
            self._step_schedulers(None, skip_plateau=True)

    def _step_schedulers(self, metric: Optional[float], skip_plateau: bool = False) -> None:
        """One epoch of every schedule. PyTorch warns when no optimiser step came first, which is
        expected here when --start-epoch is applied or a resumed epoch had no batch left."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
            for scheduler in self.schedulers.values():
                if not isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
                    scheduler.step()
                elif not skip_plateau:
                    scheduler.step(metric)

    def _restore(self, state: dict) -> None:
        source = str(self.resume_path)
        self.stage.load_state_dict(state["stage"], source)
        if state["stage"].get("scaler"):
            self.amp.scaler.load_state_dict(state["stage"]["scaler"])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        self.epoch, self.batch, self.iteration = state["epoch"], state["batch"], state["iteration"]
        self.loss_sum, self.loss_count = state["loss_sum"], state["loss_count"]
        self.best = state["best"]
        if self.batch and state["world_size"] != self.dist.world_size:
            self.warn(f"{source} was saved mid-epoch by {state['world_size']} process(es), this run has "
                      f"{self.dist.world_size}: epoch {self.epoch + 1} restarts from its first batch")
            self.batch, self.loss_sum, self.loss_count = 0, 0.0, 0
        set_rng_state(state["rng"])
        where = f"batch {self.batch} of epoch {self.epoch + 1}" if self.batch else f"epoch {self.epoch + 1}"
        self.info(f"resumed from {source}: {self.epoch} epoch(s) done, continuing at {where}")

    def _build_validation(self):
        args = self.args
        dataset = build_eval_dataset(args.val_dataset, args.val_root, args.val_datafile, args.val_loadSize,
                                     args.val_gt_cache)
        loader = make_loader(dataset, args.batchSize, args.nThreads, self.device)
        return loader, default_protocol(args.val_dataset)

    # ---------------------------------------------------------------- loop
    def fit(self) -> int:
        """Train until --epochs; returns the exit status (128 + signal number when stopped)."""
        args = self.args
        if self.epoch >= args.epochs:
            self.info(f"nothing to do: {self.epoch} epoch(s) are done and --epochs is {args.epochs}")
            return 0
        if self.main:
            self._write_args()
        self.info(f"{args.train_stage} on {self.device}"
                  f"{f' x {self.dist.world_size} processes' if self.dist.enabled else ''}: "
                  f"{len(self.stage.datasets[0])} training images, epochs {self.epoch + 1}..{args.epochs}, "
                  f"seed {args.seed}")
        self.stage.train()
        try:
            with StopSignal(verbose=self.main) as stop:
                while self.epoch < args.epochs:
                    if any_rank(stop.signum is not None, self.dist, self.device) or not self._train_epoch(stop):
                        self.info(f"stopped; resume with --resume {self.checkpoint_dir / LAST_STATE}")
                        return 128 + (stop.signum or signal.SIGINT)
                    self._end_epoch()
        finally:
            if self.writer is not None:
                self.writer.close()
        return 0

    def _train_epoch(self, stop: StopSignal) -> bool:
        """One epoch from ``self.batch``; False when a stop was requested (state saved)."""
        args = self.args
        data = EpochData(self.stage.datasets, args.batchSize, args.nThreads, args.seed, self.epoch, self.dist,
                         self.device, start=self.batch, sampling=args.sampling)
        bar = tqdm(total=data.num_batches, initial=data.start, desc=f"epoch {self.epoch + 1}/{args.epochs}",
                   unit="batch", dynamic_ncols=True, disable=not self.main)
        start, images = time.perf_counter(), 0
        try:
            for batches in data:
                try:
                    losses = self._step(batches)
                except NonFiniteLoss as exc:
                    raise TrainingDiverged(self._diverged(str(exc), data.num_batches)) from None
                self.iteration += 1
                self.batch += 1
                images += batches[0]["image"].shape[0] * self.dist.world_size
                bar.update()
                bar.set_postfix(loss=f"{losses['total']:.4f}",
                                img_s=f"{images / (time.perf_counter() - start):.1f}")
                if any_rank(stop.signum is not None, self.dist, self.device):
                    self._save_state()
                    return False
        except DatasetError:
            if self.main and self.batch > data.start:
                self._save_state()  # keep this epoch's progress; fix the file and --resume
            raise
        finally:
            bar.close()
        return True

    def _step(self, batches: Tuple[dict, ...]) -> Dict[str, float]:
        """One iteration, logged when due. Its outputs go out of scope here, before the next one."""
        batch = to_device(batches, self.device)
        losses, outputs = train_step(self.stage, batch, self.amp, self.dist, self.device)
        self.loss_sum += losses["total"]
        self.loss_count += 1
        if self.iteration % self.args.log_freq == 0:
            self._log(losses, batch, outputs)
        return losses

    def _end_epoch(self) -> None:
        args = self.args
        lr = self._lr()
        epoch_loss = mean_over_ranks(self.loss_sum / max(self.loss_count, 1), self.dist, self.device)
        self.epoch += 1
        self.batch, self.loss_sum, self.loss_count = 0, 0.0, 0
        if not all(torch.isfinite(p).all() for p in self.stage.trainable_parameters()):
            raise TrainingDiverged(self._diverged("non-finite weights"))
        metrics = broadcast_from_main(self._validate() if self.val else None, self.dist)
        if metrics and non_finite_metrics(metrics):
            raise TrainingDiverged(self._diverged(f"non-finite validation metrics "
                                                  f"({', '.join(non_finite_metrics(metrics))})"))
        self._step_schedulers(metrics["abs_rel"] if metrics else epoch_loss)
        if not self.main:
            return
        saved = []
        for name, net in self.stage.networks().items():
            path = self.checkpoint_dir / f"{name}_{self.epoch}.pth"
            atomic_save(net.state_dict(), path)
            saved.append(path.name)
        if metrics and (self.best is None or metrics["abs_rel"] < self.best["abs_rel"]):
            self._save_best(metrics)
        self._save_state()
        if args.keep_epochs:
            self._remove_old_epoch_files(self.epoch - args.keep_epochs + 1)
        self.writer.add_scalar("train/epoch_loss", epoch_loss, self.epoch)
        self.writer.flush()
        val = f", val abs_rel {metrics['abs_rel']:.4f}" if metrics else ""
        self.info(f"epoch {self.epoch}/{args.epochs}: mean loss {epoch_loss:.4f}, lr {lr:.3g}{val}; "
                  f"saved {', '.join(saved)}")

    # ---------------------------------------------------------------- helpers
    def _lr(self) -> float:
        return next(iter(self.stage.optimizers.values())).param_groups[0]["lr"]

    def _log(self, losses: Dict[str, float], batch: Batch, outputs: Any) -> None:
        if not self.main:
            return
        step = self.iteration
        for key, tag in self.stage.scalar_tags.items():
            self.writer.add_scalar(f"train/{tag}", losses[key], step)
        self.writer.add_scalar("train/batches_loss_avg", self.loss_sum / self.loss_count, step)
        self.writer.add_scalar("train/lr", self._lr(), step)
        for name, images in self.stage.images(batch, outputs).items():
            self.writer.add_image(f"train/{name}", make_grid(images.clamp(0, 1).cpu(), nrow=1), step)

    def _validate(self) -> Dict[str, float]:
        loader, protocol = self.val
        result = evaluate(self.stage.predictor(), loader, protocol, DEPTH_SCALE[self.args.val_dataset],
                          self.device)
        self.stage.train()
        for name, value in result.metrics.items():
            self.writer.add_scalar(f"val/{name}", value, self.epoch)
        return result.metrics

    def _save_best(self, metrics: Dict[str, float]) -> None:
        """The best epoch's networks, frozen ones included, under the release's names: a folder that
        test.py --checkpoint_dir reads as it is (for stage 3)."""
        folder = self.checkpoint_dir / BEST_DIR
        for name, net in {**self.stage.frozen_networks(), **self.stage.networks()}.items():
            atomic_save(net.state_dict(), folder / f"{name}.pth")
        self.best = {"epoch": self.epoch, "abs_rel": metrics["abs_rel"]}
        with open(folder / "metrics.json", "w", encoding="utf-8") as f:
            json.dump({"epoch": self.epoch, "dataset": self.args.val_dataset, "metrics": metrics}, f, indent=2)

    def _remove_old_epoch_files(self, oldest_kept: int) -> None:
        """--keep_epochs: the per-epoch files of epochs before ``oldest_kept`` go, those of earlier
        runs in the folder included (called once the newest epoch and last.pth are on disk)."""
        for name in self.stage.networks():
            for path in self.checkpoint_dir.glob(f"{name}_*.pth"):
                epoch = path.stem[len(name) + 1:]
                if epoch.isdigit() and int(epoch) < oldest_kept:
                    path.unlink()

    def _save_state(self) -> None:
        if not self.main:
            return
        atomic_save({
            "format": STATE_FORMAT, "train_stage": self.args.train_stage,
            "epoch": self.epoch, "batch": self.batch, "iteration": self.iteration,
            "loss_sum": self.loss_sum, "loss_count": self.loss_count, "best": self.best,
            "world_size": self.dist.world_size,
            "stage": {**self.stage.state_dict(), "scaler": self.amp.scaler.state_dict()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "rng": rng_state(), "args": vars(self.args),
        }, self.checkpoint_dir / LAST_STATE)

    def _write_args(self) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        with open(self.checkpoint_dir / "args.json", "w", encoding="utf-8") as f:
            json.dump({**vars(self.args), "world_size": self.dist.world_size}, f, indent=2)

    def _diverged(self, what: str, num_batches: Optional[int] = None) -> str:
        where = (f"epoch {self.epoch + 1}, iteration {self.iteration} (batch {self.batch + 1} of "
                 f"{num_batches})" if num_batches else f"the end of epoch {self.epoch}")
        last = self.checkpoint_dir / LAST_STATE
        kept = (f"the last good state {last} is kept (nothing was saved after it)" if last.exists()
                else "no training state had been saved yet")
        return (f"training diverged: {what} at {where}; stopped. {kept}. Try a lower --lr or check the "
                f"training data")


def run_training(args: argparse.Namespace) -> int:
    """Train as the flags say; returns the exit status."""
    kill_workers_at_exit()
    dist, device = init_distributed(args.device)
    try:
        return Trainer(args, dist, device).fit()
    finally:
        shutdown_distributed()

