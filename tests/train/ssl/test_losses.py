"""Each multi-view loss against a value worked by hand, and the schedules' end points."""

import math

import pytest
import torch
import torch.nn.functional as F

from sslx.train.optimizers import cosine_warmup
from sslx.train.ssl.heads import cosine_momentum
from sslx.train.ssl.losses import (
    dino_loss,
    negative_cosine,
    normalised_mse,
    nt_xent,
    updated_centre,
)

E1, E2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])


def test_nt_xent_of_two_orthogonal_samples():
    # Views identical, samples orthogonal: each query sees its positive at cos 1 and two
    # negatives at cos 0; at T = 0.5: -log(e^2 / (e^2 + 2)) = log(1 + 2 e^-2).
    z = torch.cat([E1, E2])
    loss = nt_xent((z, z), (z, z), 0, temperature=0.5)
    assert loss.item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), rel=1e-6)


def _nt_xent_by_loop(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    terms = []
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        logits = torch.stack([z[i] @ z[k] / t for k in range(2 * n) if k != i])
        target = [k for k in range(2 * n) if k != i].index(pos)
        terms.append(-(logits[target] - torch.logsumexp(logits, 0)))
    return torch.stack(terms).mean()


def test_nt_xent_is_the_per_query_definition_and_splits_over_ranks():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    whole = nt_xent((z1, z2), (z1, z2), 0, 0.2)
    assert whole.item() == pytest.approx(_nt_xent_by_loop(z1, z2, 0.2).item(), rel=1e-5)
    # Rank r of 2 holds rows [3r, 3r + 3) as queries, everyone's as keys: the mean of the
    # ranks' losses is the one-rank loss.
    halves = [nt_xent((z1[a : a + 3], z2[a : a + 3]), (z1, z2), a, 0.2) for a in (0, 3)]
    assert ((halves[0] + halves[1]) / 2).item() == pytest.approx(whole.item(), rel=1e-6)


def test_cosine_losses():
    p = torch.cat([E1, E1, E1])
    z = torch.cat([E1, E2, -E1])  # cos 1, 0, -1
    assert negative_cosine(p, z).item() == pytest.approx(0.0)  # mean of -1, 0, 1
    assert normalised_mse(p, z).item() == pytest.approx(2.0)  # mean of 0, 2, 4
    p, z = p.clone().requires_grad_(), z.clone().requires_grad_()
    (negative_cosine(p, z) + normalised_mse(p, z)).backward()
    assert p.grad is not None and z.grad is None  # the target gets no gradient


def test_dino_loss_and_centre():
    # Teacher logits (0, ln 3) at T = 1: (1/4, 3/4); student (0, 0) at T = 1: log(1/2) each;
    # cross-entropy = ln 2 for both (global view, other global view) pairs.
    teacher = [torch.tensor([[0.0, math.log(3)]])] * 2
    student = [torch.zeros(1, 2)] * 2
    loss = dino_loss(student, teacher, torch.zeros(1, 2), 1.0, 1.0)
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)
    # A local view (index 2) is compared with both globals; a view never with itself.
    local = torch.tensor([[math.log(3), 0.0]])  # log_softmax: (ln 3/4, ln 1/4)
    with_local = dino_loss([*student, local], teacher, torch.zeros(1, 2), 1.0, 1.0)
    expected = (2 * math.log(2) + 2 * -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))) / 4
    assert with_local.item() == pytest.approx(expected, rel=1e-6)
    centre = updated_centre(torch.zeros(1, 2), torch.tensor([2.0, 4.0]), 2, 0.9)
    assert centre.flatten().tolist() == pytest.approx([0.1, 0.2])


def test_schedules_end_points():
    assert cosine_momentum(0.996, 0, 100) == pytest.approx(0.996)
    assert cosine_momentum(0.996, 50, 100) == pytest.approx(0.998)
    assert cosine_momentum(0.996, 100, 100) == pytest.approx(1.0)
    # 10 warm-up steps from 0 to 1 (DINO's linspace), then a cosine to 0.1 by step 110.
    assert cosine_warmup(0, 110, 10, 1.0, 0.1) == 0.0
    assert cosine_warmup(9, 110, 10, 1.0, 0.1) == pytest.approx(1.0)
    assert cosine_warmup(10, 110, 10, 1.0, 0.1) == pytest.approx(1.0)
    assert cosine_warmup(60, 110, 10, 1.0, 0.1) == pytest.approx(0.55)
    assert cosine_warmup(110, 110, 10, 1.0, 0.1) == pytest.approx(0.1)
    assert cosine_warmup(0, 50, 0, 0.04, 0.4) == pytest.approx(0.04)  # DINO's weight decay
