"""Is the embedding collapsing? Two measures of a batch of embeddings, logged every step
(averaged like the loss) and per epoch:

- `embedding_std`: the standard deviation of each dimension of the L2-normalised
  embedding, averaged over dimensions, times sqrt(d). SimSiam (Chen & He 2021, fig. 2)
  plots the unscaled value: about 1/sqrt(d) when the outputs spread over the sphere, 0 when
  every input maps to one point. Scaled, it is about 1 for a spread embedding and 0 for a
  collapsed one, whatever d.
- `embedding_rank`: the effective rank (Roy & Vetterli 2007), exp of the entropy of the
  normalised singular values of the L2-normalised batch: 1 when all outputs are parallel,
  up to min(b, d). It shows dimensional collapse, which the std can miss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Below this scaled std the outputs have (nearly) become one point: warn.
COLLAPSED_STD = 0.01
MAX_ROWS = 256  # the measures use at most this many rows of a batch (the SVD's cost)


@torch.no_grad()
def collapse_measures(embedding: torch.Tensor) -> dict[str, torch.Tensor]:
    """`embedding_std` and `embedding_rank` of a (b, d) batch, as float32 scalars."""
    z = F.normalize(embedding[:MAX_ROWS].detach().float(), dim=1)
    d = z.shape[1]
    std = z.std(dim=0).mean() * math.sqrt(d) if len(z) > 1 else z.new_zeros(())
    s = torch.linalg.svdvals(z)
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"embedding_std": std, "embedding_rank": torch.exp(entropy)}


def collapsed(std: float) -> bool:
    return std < COLLAPSED_STD
