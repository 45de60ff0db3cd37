"""Global-batch statistics: one step of SimCLR (negatives gathered over ranks), BYOL and
SimSiam (global BatchNorm) and DINO (its centre) on two CPU ranks gives the loss,
gradients and statistics of one rank on the same global batch."""

from pathlib import Path

import pytest
import torch


@pytest.mark.slow  # two torchrun launches: ~40 s; CI runs it with the slow tests
def test_two_ranks_compute_what_one_does(tmp_path, torchrun):
    worker = Path(__file__).with_name("ddp_multiview_worker.py")
    torchrun(worker, tmp_path, nproc=1)
    torchrun(worker, tmp_path, nproc=2)
    one, two = torch.load(tmp_path / "world1.pt"), torch.load(tmp_path / "world2.pt")
    for method in one:
        a, b = one[method], two[method]
        torch.testing.assert_close(a["loss"], b["loss"], rtol=1e-5, atol=1e-6)
        assert a["grads"].keys() == b["grads"].keys()
        # Summed in another order: equal to float32 rounding of the largest gradient (the
        # biases under BatchNorm have gradients of ~1e-8, pure rounding, on both sides).
        scale = max(float(g.abs().max()) for g in a["grads"].values())
        for name in a["grads"]:
            torch.testing.assert_close(
                a["grads"][name], b["grads"][name], rtol=0, atol=2e-5 * scale, msg=name
            )
        for name in a["buffers"]:
            torch.testing.assert_close(
                a["buffers"][name], b["buffers"][name], rtol=1e-4, atol=1e-6, msg=name
            )
