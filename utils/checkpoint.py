"""Checkpoint I/O: released files with or without the ``module.`` prefix, atomic saves, and
errors that say which network, which file and which keys are wrong."""
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import torch
import torch.nn as nn

from constants import CHECKPOINT_FLAGS, DATA_PARALLEL_PREFIX as PREFIX, FILE_STEMS

from .errors import UserError

PathLike = Union[str, os.PathLike]
MAX_LISTED_KEYS = 5
# atomic_save's temporary files: ".<name>.<random>.tmp" beside the file it replaces.
TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"
TEMP_PATTERN = re.compile(r"\..+\.pth\.[^.]+\.tmp")
# torch's reason when weights_only refuses a pickle (without its advice on loading the file anyway).
UNPICKLER_REASON = re.compile(r"WeightsUnpickler error:\s*(.*?)(?: Please use|\n|$)")


class CheckpointError(UserError):
    """A checkpoint file that cannot be loaded into the network it was given for."""


def strip_prefix(state_dict: Mapping[str, Any], prefix: str = PREFIX) -> Dict[str, Any]:
    """Drop the ``nn.DataParallel``/DDP prefix when every key carries it."""
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def safe_load(path: PathLike, who: str, kind: str, map_location: Union[str, torch.device] = "cpu") -> Any:
    """torch.load restricted to tensors and plain containers. A pickle that would run code is refused
    with torch's reason (the global it wanted); any other unreadable file names torch's error."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = UNPICKLER_REASON.search(str(exc))
        if found is None:
            raise CheckpointError(f"{who}: {path} is not a readable {kind} ({_reason(exc)})") from exc
        reason = found.group(1).strip()
        if reason.startswith("Unsupported global"):
            raise CheckpointError(f"{who}: {path} is refused: it is not a plain {kind} but a pickle that runs "
                                  f"code while loading ({reason}); such a file is unsafe to load, ask its "
                                  f"author for a state_dict of tensors") from None
        raise CheckpointError(f"{who}: {path} is not a readable {kind} (UnpicklingError: {reason})") from None
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise CheckpointError(f"{who}: {path} is not a readable {kind} ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    first_line = str(exc).partition("\n")[0]
    return f"{type(exc).__name__}: {first_line[:200]}"


def read_state_dict(path: PathLike, name: str = "network",
                    map_location: Union[str, torch.device] = "cpu") -> Dict[str, torch.Tensor]:
    """Read a plain state_dict (prefix stripped) of finite tensors from ``path``, onto ``map_location``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{name}: checkpoint file not found: {path}")
    obj = safe_load(path, name, "PyTorch checkpoint", map_location)
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{name}: {path} does not hold a state_dict of tensors "
                              f"(found {type(obj).__name__})")
    state_dict = strip_prefix(obj)
    non_finite = [k for k, v in state_dict.items()
                  if v.is_floating_point() and not v.is_meta and not torch.isfinite(v).all()]
    if non_finite:
        raise CheckpointError(f"{name}: {path} holds NaN or infinite values in {_first(non_finite)}; it would "
                              f"predict NaN depth (was it saved from a diverged run?)")
    return state_dict


def _first(keys) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - MAX_LISTED_KEYS} more)" if len(keys) > MAX_LISTED_KEYS else ""
    return ", ".join(keys[:MAX_LISTED_KEYS]) + more


def check_state_dict(net: nn.Module, state_dict: Mapping[str, torch.Tensor], name: str,
                     path: PathLike) -> None:
    """Raise CheckpointError unless ``state_dict`` has exactly the keys and shapes of ``net``."""
    expected = net.state_dict()
    missing = set(expected) - set(state_dict)
    unexpected = set(state_dict) - set(expected)
    wrong_shape = [f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
                   for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if not (missing or unexpected or wrong_shape):
        return
    lines = [f"{name}: {path} does not match the {name} network"]
    guess = guess_network(state_dict)
    if guess and guess != name:
        lines[0] += f" (it looks like a {guess} checkpoint)"
    if missing:
        lines.append(f"  missing keys: {_first(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys: {_first(unexpected)}")
    if wrong_shape:
        lines.append(f"  wrong shapes (file != network): {', '.join(wrong_shape[:MAX_LISTED_KEYS])}")
    raise CheckpointError("\n".join(lines))


def guess_network(state_dict: Mapping[str, Any]) -> Optional[str]:
    """Name of the released network whose key set equals the given one, if any."""
    from models import DSA, DepthNet, StructDecoder, StructEncoder

    keys = set(strip_prefix(state_dict))
    for name, cls in (("struct_encoder", StructEncoder), ("struct_decoder", StructDecoder),
                      ("dsa", DSA), ("depth_net", DepthNet)):
        with torch.device("meta"):
            if set(cls().state_dict()) == keys:
                return name
    return None


def load_network(net: nn.Module, path: PathLike, name: str,
                 map_location: Union[str, torch.device] = "cpu") -> nn.Module:
    """Load a released (or our own) checkpoint into ``net``; strict on keys and shapes."""
    state_dict = read_state_dict(path, name, map_location)
    check_state_dict(net, state_dict, name, path)
    net.load_state_dict(state_dict)
    return net


def load_drn_imagenet(dsa: nn.Module, path: PathLike) -> nn.Module:
    """Load the ImageNet DRN-D-22 file (``layer0..8`` keys) into the DSA encoder ``E.base.0..8``.

    The classifier (``fc``) has no counterpart and is skipped. The released file predates
    PyTorch 0.4 and so has no BN ``num_batches_tracked`` counters; those start at 0.
    """
    state_dict = read_state_dict(path, "DRN-D-22 (ImageNet)")
    mapped = {}
    for key, value in state_dict.items():
        stage, _, rest = key.partition(".")
        if stage.startswith("layer") and stage[5:].isdigit():
            mapped[f"base.{stage[5:]}.{rest}"] = value
    for key, value in dsa.E.state_dict().items():
        if key.endswith("num_batches_tracked"):
            mapped.setdefault(key, torch.zeros_like(value))
    check_state_dict(dsa.E, mapped, "DRN-D-22 (ImageNet)", path)
    dsa.E.load_state_dict(mapped)
    return dsa


def atomic_save(obj: Any, path: PathLike) -> None:
    """torch.save to a temporary file in the same folder, then rename: a crash never leaves a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_interrupted_saves(folder: PathLike) -> List[Path]:
    """Delete the temporary files that an atomic_save killed mid-write left in ``folder``; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.is_file() and TEMP_PATTERN.fullmatch(p.name)]
    for path in stale:
        path.unlink()
    return stale


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _stem_and_epoch(path: Path):
    """('dsa_modle', 12) for dsa_modle_12.pth; ('dsa_kitti', -1) for dsa_kitti.pth."""
    stem = path.stem.lower()
    base, _, tail = stem.rpartition("_")
    return (base, int(tail)) if base and tail.isdigit() else (stem, -1)


def find_checkpoint(folder: PathLike, name: str) -> Path:
    """The checkpoint of network ``name`` in ``folder``: a ``<stem>[_<suffix>][_<epoch>].pth`` file
    (``stem`` one of FILE_STEMS[name]), the highest epoch when there are several."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    candidates = {}
    for path in folder.glob("*.pth"):
        base, epoch = _stem_and_epoch(path)
        if any(base == s or base.startswith(s + "_") for s in FILE_STEMS[name]):
            candidates[path] = epoch
    if not candidates:
        raise CheckpointError(f"{name}: no {'|'.join(FILE_STEMS[name])}*.pth file in {folder}")
    best = max(candidates.values())
    chosen = sorted(p.name for p, e in candidates.items() if e == best)
    if len(chosen) > 1:
        raise CheckpointError(f"{name}: several candidate checkpoints in {folder}: {', '.join(chosen)}; "
                              f"name one with --{CHECKPOINT_FLAGS[name]}")
    return folder / chosen[0]


def checkpoint_paths(args) -> Dict[str, Path]:
    """Path of each network's checkpoint from the release flags, falling back to --checkpoint_dir."""
    paths, missing = {}, []
    for name, flag in CHECKPOINT_FLAGS.items():
        value = getattr(args, flag, None)
        if value:
            paths[name] = Path(value)
        elif getattr(args, "checkpoint_dir", None):
            paths[name] = find_checkpoint(args.checkpoint_dir, name)
        else:
            missing.append(f"--{flag}")
    if missing:
        raise CheckpointError(f"no checkpoint given for {', '.join(missing)} (pass the files or "
                              f"--checkpoint_dir)")
    return paths


def load_s2r(paths: Mapping[str, PathLike], map_location: Union[str, torch.device] = "cpu") -> nn.Module:
    """An S2RDepthNet with each of its four parts loaded from its checkpoint."""
    from models import S2RDepthNet

    model = S2RDepthNet()
    for name, path in paths.items():
        load_network(getattr(model, name), path, name, map_location)
    return model


def save_initial_networks(folder: PathLike, seed: int = 0, release_prefix: bool = False) -> Dict[str, Path]:
    """The four networks as training initialises them (seeded; the DP module re-initialised as the
    depth stages do), one file each under the release's names. With ``release_prefix`` the last
    three carry ``module.`` as the released files do. Returns {network: path}."""
    from models import S2RDepthNet

    torch.manual_seed(seed)
    model = S2RDepthNet()
    model.depth_net.reset_parameters()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in CHECKPOINT_FLAGS:
        state = getattr(model, name).state_dict()
        if release_prefix and name != "struct_encoder":
            state = {PREFIX + k: v for k, v in state.items()}
        paths[name] = folder / f"{name}.pth"
        torch.save(state, paths[name])
    return paths
