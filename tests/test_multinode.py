"""Beyond one machine: two torchrun "nodes" of one CPU process each, on 127.0.0.1 only, meet through
the c10d rendezvous (the README's multi-node launch) and train stage 2 for one epoch with gloo;
both ranks end with identical weights (parameters), equal to the checkpoint rank 0 writes. The
BatchNorm running statistics are not compared: DistributedDataParallel copies rank 0's buffers to
the others at the start of each forward pass, so after the last one each rank holds statistics
updated with its own batch, and the checkpoint has rank 0's.

Run by torchrun, this file is the worker: train.py's training, then each rank saves the weights it
ended with (train.py itself writes from rank 0 only).
"""
import socket
import subprocess
import sys
from pathlib import Path

import torch

from models import StructDecoder
from options.train_options import parse_train_args
from tests.conftest import ROOT
from tests.test_train_run import ENV, base_args, data, plain_state  # noqa: F401 (data: the fixture)
from training.distributed import init_distributed, shutdown_distributed
from training.trainer import Trainer
from utils.checkpoint import load_network

NODE_TIMEOUT_S = 600


def train_and_save_weights(argv) -> int:
    """train.py's run, then ``rank<N>.pth`` with this rank's trained parameters in --checkpoint_dir."""
    args = parse_train_args(argv)
    dist, device = init_distributed(args.device)
    try:
        trainer = Trainer(args, dist, device)
        status = trainer.fit()
        weights = {name: {k: p.detach() for k, p in net.named_parameters()}
                   for name, net in trainer.stage.networks().items()}
        torch.save(weights, Path(args.checkpoint_dir) / f"rank{dist.rank}.pth")
    finally:
        shutdown_distributed()
    return status


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_command(port: int, flags: list) -> list:
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
            "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "s2r-two-nodes",
            "--local_addr", "127.0.0.1", "-m", "tests.test_multinode", *flags]


def test_two_nodes_end_with_identical_weights(data, tmp_path):  # noqa: F811 (the imported fixture)
    out = tmp_path / "two_nodes"
    initial = data["ckpt"]["struct_decoder"]
    flags = [*base_args(data), "--Struct_Decoder_path", str(initial), "--batchSize", "1", "--epochs", "1",
             "--nThreads", "0", "--device", "cpu", "--seed", "0", "--checkpoint_dir", str(out),
             "--log_dir", str(out / "logs")]
    env = {**ENV, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    port = free_port()
    nodes = [subprocess.Popen(node_command(port, flags), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        logs = [node.communicate(timeout=NODE_TIMEOUT_S)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(logs)
    ranks = [torch.load(out / f"rank{r}.pth", map_location="cpu", weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys() == {"struct_decoder", "depth_net"}
    for name in ranks[0]:
        differ = [k for k in ranks[0][name] if not torch.equal(ranks[0][name][k], ranks[1][name][k])]
        assert not differ, f"{name}: {len(differ)} tensors differ between the ranks, e.g. {differ[:3]}"
    saved = plain_state(out / "struct_decoder_1.pth")  # rank 0's checkpoint, free of 'module.'
    trained = ranks[1]["struct_decoder"]
    assert trained and all(torch.equal(saved[k], trained[k]) for k in trained)
    start = load_network(StructDecoder(), initial, "struct_decoder").state_dict()
    assert any(not torch.equal(start[k], trained[k]) for k in trained), \
        "the step changed nothing: the comparison would be vacuous"


if __name__ == "__main__":
    sys.exit(train_and_save_weights(sys.argv[1:]))
