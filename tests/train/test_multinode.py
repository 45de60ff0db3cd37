"""Two "nodes" on this host, each a torchrun agent with one CPU process, meeting through
the c10d rendezvous (docs/train.md, "Several nodes"): a node killed mid-run, then the
same two commands with --resume, end with the weights of an uninterrupted run."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sslx.train.checkpoint import load_checkpoint

TRAIN = (
    "train --method rotnet --size 64 --conv1-stride 4 --classifier-width 16 "
    "--batch-size 24 --epochs 6 --shuffle-buffer 32 --workers 1 "
    "--checkpoint-every 10 --quiet"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The worker that kills its own node (its agent and itself) as soon as the
# first checkpoint, at step 10 of 60, is on disk: timed by the run itself, since a test
# that polled for the file could see it only after a fast run had already finished.
KILLED_AT_FIRST_CHECKPOINT = """
import os, signal, sys
from sslx import cli
from sslx.train import loop
save = loop.save_checkpoint
def save_then_die(run):
    save(run)  # rank 0 writes it; every rank passes the barrier after the write
    if run.dist.rank == 1:  # the agent (torchrun, this worker's parent), then the worker
        os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
loop.save_checkpoint = save_then_die
sys.exit(cli.main())
"""


def _nodes(
    shards: Path, out: Path, job: str, resume: bool = False, kill: bool = False
) -> list[subprocess.Popen]:
    """Both nodes' `torchrun --nnodes 2 --rdzv-backend c10d` (the first hosts the store);
    with `kill`, rank 1's node dies at the first checkpoint."""
    endpoint = f"127.0.0.1:{_free_port()}"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
    launcher += ["--nproc-per-node", "1", "--rdzv-backend", "c10d"]
    launcher += ["--rdzv-endpoint", endpoint, "--rdzv-id", job, "--max-restarts", "0"]
    script = (
        KILLED_AT_FIRST_CHECKPOINT
        if kill
        else "import sys; from sslx import cli; sys.exit(cli.main())"
    )
    launcher += ["--no-python", sys.executable, "-c", script]
    command = [*TRAIN.split(), "--shards", str(shards), "--out", str(out)]
    command += ["--resume"] if resume else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return [
        subprocess.Popen(
            [*launcher, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # each node is a process group, killed as one
        )
        for _ in range(2)
    ]


def _finish(nodes: list[subprocess.Popen], timeout: float = 300) -> list[int]:
    codes = []
    for node in nodes:
        try:
            node.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.communicate()
        codes.append(node.returncode)
    return codes


def _weights(run: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(run)
    assert payload["progress"]["finished"] and payload["layout"]["world_size"] == 2
    return {**payload["backbone"], **{f"heads.{k}": v for k, v in payload["heads"].items()}}


@pytest.mark.slow  # four torchrun launches of two processes each: about 2 minutes
def test_a_killed_node_resumes_through_the_c10d_rendezvous(shards, tmp_path):
    whole = _nodes(shards, tmp_path / "whole", "whole")
    assert _finish(whole) == [0, 0]

    run = tmp_path / "killed"
    codes = sorted(_finish(_nodes(shards, run, "first", kill=True)))
    assert codes[0] == -signal.SIGKILL and codes[1] > 0, codes  # one node killed, one failed
    progress = load_checkpoint(run)["progress"]
    assert progress["global_step"] == 10 and not progress["finished"]

    again = _nodes(shards, run, "second", resume=True)
    assert _finish(again) == [0, 0]
    got, want = _weights(run), _weights(tmp_path / "whole")
    assert got.keys() == want.keys()
    for name in want:
        assert torch.equal(got[name], want[name]), name
