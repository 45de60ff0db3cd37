"""BiGAN (Donahue, Krähenbühl & Darrell, ICLR 2017): an encoder learnt by fooling a discriminator.

A discriminator D sees pairs (x, E(x)) of a real image and its code, and (G(z), z) of a
generated image and the uniform latent it came from, and tells them apart; the generator G
and the encoder E are trained together to fool it. E is the shared AlexNet's conv trunk
(pool5) followed by a linear map to z and a tanh; `sslx probe` reads its conv layers like
any other method's. The reference encoder has no fc6/fc7, so BiGAN freezes them (they stay
at their initialisation and are not trained).

The loop's single backward and optimiser step per batch make one simultaneous update of
all three networks, as the reference does by default (`k = 1`): D's loss sees detached
codes and images, G and E's loss goes through D with detached parameters, so the gradient
of the sum gives each network exactly the gradient of its own loss. docs/bigan.md has the
details and every deviation from the reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sslx.train.alexnet import AlexNet
from sslx.train.batches import Batch
from sslx.train.evaluation import evaluating
from sslx.train.methods.base import EpochContext, Method, StepOutput
from sslx.train.methods.bigan.nets import Generator, JointDiscriminator
from sslx.train.methods.bigan.pictures import save_png, to_grid
from sslx.train.methods.bigan.spec import SPEC, BiGANOptions

if TYPE_CHECKING:
    pass

SAMPLE_GRID = 64  # generated samples per picture, from a fixed z
RECON_GRID = 32  # real patches per reconstruction picture, each beside G(E(x))


def uniform_latents(n: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """z ~ U[-1, 1]^dim, from torch's RNG (which the loop reseeds every step)."""
    return torch.rand(n, dim, device=device) * 2 - 1


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    logits = logits.float()  # float32 whatever the autocast dtype
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss: (x, E(x)) pairs are real (1), (G(z), z) pairs fake (0); the mean of the two."""
    return 0.5 * (_bce(real_logits, 1.0) + _bce(fake_logits, 0.0))


def generator_encoder_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """G and E's non-saturating loss: the same cross-entropies with the labels flipped."""
    return 0.5 * (_bce(real_logits, 0.0) + _bce(fake_logits, 1.0))


def discriminator_metrics(
    real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> dict[str, torch.Tensor]:
    """D's accuracy on real and fake pairs and its mean probability of "real" on each."""
    real, fake = real_logits.detach().float(), fake_logits.detach().float()
    return {
        "d_accuracy_real": (real > 0).float().mean(),
        "d_accuracy_fake": (fake < 0).float().mean(),
        "d_real": torch.sigmoid(real).mean(),
        "d_fake": torch.sigmoid(fake).mean(),
    }


class BiGAN(Method):
    """The BiGAN plug-in: E is the AlexNet trunk plus a linear map to z; G and D its own."""

    spec = SPEC
    options: BiGANOptions

    def __init__(self, backbone: AlexNet, options: BiGANOptions | None = None) -> None:
        super().__init__(backbone, options)
        o = self.options
        self.latent_dim, self.gan_size = o.latent_dim, o.gan_size
        for layer in (backbone.fc6, backbone.fc7):
            layer.requires_grad_(False)  # not part of BiGAN's encoder
        self.encoder_head = nn.Linear(backbone.flat_dim, self.latent_dim)
        nn.init.normal_(self.encoder_head.weight, 0.0, 0.02)
        nn.init.zeros_(self.encoder_head.bias)
        self.generator = Generator(self.latent_dim, self.gan_size, o.gan_width)
        self.discriminator = JointDiscriminator(self.latent_dim, self.gan_size, o.gan_width)
        # The z of the sample grids: drawn from the run seed, kept in the checkpoint.
        self.register_buffer("sample_z", uniform_latents(SAMPLE_GRID, self.latent_dim))
        self._fixed_images: torch.Tensor | None = None

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """E(x) in [-1, 1]^latent_dim, from uint8 images at the model's input size."""
        return torch.tanh(self.encoder_head(self.backbone.trunk(images)))

    def gan_view(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> [-1, 1] at G and D's size (shrunk if E sees larger ones)."""
        x = images.float() / 127.5 - 1
        if x.shape[-1] != self.gan_size:
            size = (self.gan_size, self.gan_size)
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        return x

    def forward(self, images: torch.Tensor, batch: Batch) -> StepOutput:
        x = self.gan_view(images)
        z = uniform_latents(images.shape[0], self.latent_dim, images.device)
        code, fake = self.encode(images), self.generator(z)
        # D's loss on detached inputs: its gradient reaches D only.
        d_real = self.discriminator(x, code.detach())
        d_fake = self.discriminator(fake.detach(), z)
        d_loss = discriminator_loss(d_real, d_fake)
        # G and E's loss through a frozen copy of D: its gradient reaches G and E only.
        ge_loss = generator_encoder_loss(
            self._frozen_discriminator(x, code), self._frozen_discriminator(fake, z)
        )
        metrics = {
            "d_loss": d_loss.detach(),
            "ge_loss": ge_loss.detach(),
            # 0.5 when balanced, -> 1 when D wins; finite, since d_loss + ge_loss >= 2 log 2.
            "loss_balance": (ge_loss / (ge_loss + d_loss)).detach(),
            **discriminator_metrics(d_real, d_fake),
        }
        return StepOutput(d_loss + ge_loss, metrics)

    def _frozen_discriminator(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """D with detached parameters and throwaway copies of its BatchNorm statistics."""
        d = self.discriminator
        state = {name: p.detach() for name, p in d.named_parameters()}
        state.update({name: b.clone() for name, b in d.named_buffers()})
        return functional_call(d, state, (x, z))

    def parameter_groups(self) -> list[dict]:
        """All trainable parameters; BatchNorm gains without weight decay, as the reference."""
        norms = (nn.BatchNorm1d, nn.BatchNorm2d)
        gains = [m.weight for m in self.modules() if isinstance(m, norms)]  # all trainable
        ids = {id(p) for p in gains}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        return [{"params": rest}, {"params": gains, "weight_decay": 0.0}]

    @torch.no_grad()
    def pictures(self, images: torch.Tensor | None) -> dict:
        """Grids (uint8 HWC) of G(sample_z) and, for uint8 `images`, x beside G(E(x))."""
        with evaluating(self):  # BatchNorm with its running statistics
            grids = {"samples": to_grid(self.generator(self.sample_z))}
            if images is not None:
                x, recon = self.gan_view(images), self.generator(self.encode(images))
                pairs = torch.stack([x, recon], 1).flatten(0, 1)  # x0, G(E(x0)), x1, ...
                grids["recons"] = to_grid(pairs)
        return grids

    def on_epoch_end(self, ctx: EpochContext) -> None:
        """Write RUN/samples/epoch_NNNN.png and RUN/recons/epoch_NNNN.png (main rank only)."""
        log = ctx.log
        if log is None or not log.enabled:
            return
        if self._fixed_images is None:
            first = ctx.data.first_images(RECON_GRID)  # the same patches every epoch
            self._fixed_images = None if first is None else first.permute(0, 3, 1, 2).contiguous()
        images = None if self._fixed_images is None else self._fixed_images.to(ctx.device)
        for name, grid in self.pictures(images).items():
            save_png(grid, log.run_dir / name / f"epoch_{ctx.epoch + 1:04d}.png")
            log.add_image(f"bigan/{name}", grid, ctx.step)
