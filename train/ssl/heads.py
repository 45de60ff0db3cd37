"""Projection and prediction heads of the multi-view methods, and the EMA target network.

`mlp` builds the Linear-BatchNorm-ReLU stacks of SimCLR, BYOL and SimSiam; `DINOHead` is
DINO's (GELU MLP, L2-normalised bottleneck, weight-normalised last layer). A `target`
is a copy of an online network that follows it by an exponential moving average
(BYOL's target, DINO's teacher), with its momentum on DINO's and BYOL's cosine schedule.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import nn

from sslx.train.optimizers import cosine_warmup


def mlp(
    dims: list[int], *, last_bn: bool = False, last_affine: bool = True, bias: bool = True
) -> nn.Sequential:
    """Linear layers dims[0] -> ... -> dims[-1], BatchNorm and ReLU after every hidden one;
    `last_bn` adds BatchNorm (with or without affine) after the last; `bias=False` drops
    the biases of the layers BatchNorm follows (SimSiam's projector)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        last = i == len(dims) - 2
        normed = not last or last_bn
        layers.append(nn.Linear(a, b, bias=bias or not normed))
        if not last:
            layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(b, affine=last_affine))
    return nn.Sequential(*layers)


class DINOHead(nn.Module):
    """DINO's projection head: a 3-layer GELU MLP to a `bottleneck` (weights ~ truncated
    N(0, 0.02)), L2 normalisation, then a weight-normalised linear layer to `out_dim`
    logits whose norm is fixed at 1 (`norm_last_layer`, the reference's default)."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: int = 2048,
        bottleneck: int = 256,
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        widths = (in_dim, hidden, hidden, bottleneck)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            linear = nn.Linear(a, b)
            nn.init.trunc_normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)
            norm = [nn.BatchNorm1d(b)] if batchnorm else []  # the reference's use_bn
            layers += [linear, *norm, nn.GELU()]
        self.mlp = nn.Sequential(*layers[: -2 if batchnorm else -1])
        # The weight-normalised last layer with its norm fixed at 1: each row of `last`
        # is a direction (torch's default init, as the reference's, which is created after
        # its truncated-normal pass).
        self.last = nn.Linear(bottleneck, out_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1)
        return F.linear(x, F.normalize(self.last.weight, dim=1))


def make_target(online: nn.Module) -> nn.Module:
    """A copy of `online` that gets no gradients and runs without dropout."""
    target = copy.deepcopy(online)
    target.requires_grad_(False)
    for m in target.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach().to(t.dtype), alpha=1 - momentum)


def cosine_momentum(base: float, step: int, total: int) -> float:
    """BYOL's tau = 1 - (1 - base) (cos(pi k / K) + 1) / 2: base at step 0, 1 at the end;
    the LR's cosine without warm-up, from base to 1."""
    return cosine_warmup(step, total, 0, base, 1.0)
