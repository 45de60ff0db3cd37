"""The optimisers and LR schedules of `sslx train`, from `OptimConfig`: SGD, LARS, AdamW
and Adam; step decay per epoch, or a linear warm-up then cosine decay per step.

Parameter groups may carry two flags a method sets (`Method.parameter_groups`):
`no_decay` (no weight decay, and for LARS no trust ratio: biases and BatchNorm, as SimCLR,
BYOL and DINO exclude them) and `fixed_lr` (the schedule leaves the group at the base LR:
SimSiam's predictor).
"""

from __future__ import annotations

import math

import torch

from sslx.common.optim import OptimConfig
from sslx.errors import InputError


class LARS(torch.optim.Optimizer):
    """SGD with momentum whose update of each weight tensor is scaled by the trust ratio
    eta * |w| / |g + wd w| (You et al. 2017), as SimCLR's and BYOL's LARS: weight decay is
    added to the gradient before the ratio; groups with `no_decay` get neither."""

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            trust_coefficient=trust_coefficient,
            no_decay=False,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if not group["no_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    ratio = group["trust_coefficient"] * w_norm / g_norm
                    g = g * torch.where((w_norm > 0) & (g_norm > 0), ratio, torch.ones_like(ratio))
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"].mul_(group["momentum"]).add_(g)
                p.add_(buf, alpha=-group["lr"])
        return None


def build_optimizer(groups: list[dict], optim: OptimConfig) -> torch.optim.Optimizer:
    """The configured optimiser at the base LR; groups with `no_decay` get no decay."""
    lr, wd = optim.base_lr, optim.weight_decay
    for group in groups:
        if group.get("no_decay"):
            group["weight_decay"] = 0.0
    if optim.optimizer == "sgd":
        nesterov = optim.nesterov and optim.momentum > 0
        return torch.optim.SGD(
            groups, lr=lr, momentum=optim.momentum, weight_decay=wd, nesterov=nesterov
        )
    if optim.optimizer == "lars":
        return LARS(groups, lr=lr, momentum=optim.momentum, weight_decay=wd)
    if not 0 <= optim.momentum < 1:
        raise InputError(
            f"--momentum is {optim.optimizer}'s beta1: in [0, 1), not {optim.momentum}"
        )
    betas = (optim.momentum, 0.999)
    if optim.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=wd)
    return torch.optim.Adam(groups, lr=lr, betas=betas, weight_decay=wd)


def cosine_warmup(step: int, total: int, warmup: int, start: float, end: float) -> float:
    """DINO's `cosine_scheduler` at one step: linear from 0 to `start` over the first
    `warmup` steps (0 at step 0), then half a cosine from `start` to `end` over the rest."""
    if step < warmup:
        return start * step / max(warmup - 1, 1)
    span = max(total - warmup, 1)
    t = min(step - warmup, span) / span
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * t))


class Schedule:
    """The LR schedule. "step": torch's MultiStepLR, stepped after each epoch (its state
    is what checkpoints have always stored). "cosine": the LR of every group is set
    before each step from the global step alone, so it has no state to restore."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, optim: OptimConfig, steps_per_epoch: int
    ) -> None:
        self.optimizer, self.optim = optimizer, optim
        self.total = optim.epochs * steps_per_epoch
        self.warmup = round(optim.warmup_epochs * steps_per_epoch)
        self.decay = None
        if optim.lr_schedule == "step":
            self.decay = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, milestones=list(optim.lr_milestones), gamma=optim.lr_gamma
            )

    def before_step(self, step: int) -> None:
        if self.decay is not None:
            return
        lr = cosine_warmup(step, self.total, self.warmup, self.optim.base_lr, self.optim.final_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = self.optim.base_lr if group.get("fixed_lr") else lr

    def after_epoch(self) -> None:
        if self.decay is not None:
            self.decay.step()

    def state_dict(self) -> dict:
        return self.decay.state_dict() if self.decay is not None else {"schedule": "cosine"}

    def load_state_dict(self, state: dict) -> None:
        if self.decay is not None:
            self.decay.load_state_dict(state)
