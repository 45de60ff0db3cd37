import math

import pytest
import torch

from sslx.common.optim import OptimConfig
from sslx.errors import InputError
from sslx.train.alexnet import AlexNet
from sslx.train.batches import Batch
from sslx.train.config import TrainConfig
from sslx.train.methods.bigan.method import (
    BiGAN,
    discriminator_loss,
    discriminator_metrics,
    generator_encoder_loss,
    uniform_latents,
)
from sslx.train.methods.bigan.spec import BiGANOptions
from sslx.train.methods.rotnet.method import RotNet
from sslx.train.model import ModelConfig

MODEL = ModelConfig(input_size=64, conv1_stride=4, classifier_width=32)
OPTIONS = {"latent_dim": 16, "gan_size": 32, "gan_width": 8}


def _bigan(**options) -> BiGAN:
    torch.manual_seed(0)
    return BiGAN(AlexNet(MODEL), BiGANOptions(**{**OPTIONS, **options}))


def _images(n=8, size=64) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )


def _step(images: torch.Tensor) -> tuple[torch.Tensor, Batch]:
    """A step's arguments: the images and their batch (BiGAN uses no labels)."""
    return images, Batch(images.permute(0, 2, 3, 1), torch.arange(len(images)))


def _optim(**kw) -> OptimConfig:
    changes = {"batch_size": 8, "epochs": 1, "lr_milestones": (), "lr_gamma": 1.0, **kw}
    return TrainConfig.for_method("bigan", shards="", **changes).optim


def test_losses_on_known_inputs():
    zero = torch.zeros(4)
    assert discriminator_loss(zero, zero).item() == pytest.approx(math.log(2))
    assert generator_encoder_loss(zero, zero).item() == pytest.approx(math.log(2))
    # D says "real" with probability 3/4 on the real pairs and 1/4 on the fake ones.
    real, fake = torch.full((2,), math.log(3)), torch.full((2,), -math.log(3))
    assert discriminator_loss(real, fake).item() == pytest.approx(-math.log(0.75))
    assert generator_encoder_loss(real, fake).item() == pytest.approx(-math.log(0.25))
    # Non-saturating: a confident D leaves G and E a large loss, not a vanishing one.
    assert generator_encoder_loss(torch.full((2,), 20.0), torch.full((2,), -20.0)) > 19
    assert discriminator_loss(real.bfloat16(), fake.bfloat16()).dtype == torch.float32
    m = discriminator_metrics(torch.tensor([2.0, -1.0]), torch.tensor([-3.0, -1.0]))
    assert m["d_accuracy_real"] == 0.5 and m["d_accuracy_fake"] == 1.0
    expected = (1 / (1 + math.exp(-2)) + 1 / (1 + math.exp(1))) / 2
    assert m["d_real"].item() == pytest.approx(expected)


def test_latents_and_codes_live_in_the_unit_cube():
    torch.manual_seed(0)
    z = uniform_latents(1000, 16)
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.9 and z.max() > 0.9
    method = _bigan()
    code = method.encode(_images())
    assert code.shape == (8, 16) and code.abs().max() <= 1
    assert method.gan_view(_images()).shape == (8, 3, 32, 32)  # E sees 64 px, D and G 32
    out = method(*_step(_images()))
    assert out.loss.shape == ()
    keys = {
        "d_loss",
        "ge_loss",
        "loss_balance",
        "d_accuracy_real",
        "d_accuracy_fake",
        "d_real",
        "d_fake",
    }
    assert set(out.metrics) == keys
    assert out.loss.item() == pytest.approx((out.metrics["d_loss"] + out.metrics["ge_loss"]).item())


def test_one_backward_gives_each_network_exactly_its_own_gradient():
    method, images = _bigan(), _images()
    torch.manual_seed(5)
    method(*_step(images)).loss.backward()
    combined = {n: p.grad.clone() for n, p in method.named_parameters() if p.requires_grad}

    # The same step with two separate backward passes, through the plain (unfrozen) D.
    torch.manual_seed(5)
    x = method.gan_view(images)
    z = uniform_latents(8, 16)
    code, fake = method.encode(images), method.generator(z)
    d = method.discriminator
    d_named = list(d.named_parameters())
    d_loss = discriminator_loss(d(x, code.detach()), d(fake.detach(), z))
    d_grads = torch.autograd.grad(d_loss, [p for _, p in d_named])
    ge_named = [
        (n, p)
        for n, p in method.named_parameters()
        if p.requires_grad and not n.startswith("discriminator.")
    ]
    ge_loss = generator_encoder_loss(d(x, code), d(fake, z))
    ge_grads = torch.autograd.grad(ge_loss, [p for _, p in ge_named])

    separate = {f"discriminator.{n}": g for (n, _), g in zip(d_named, d_grads, strict=True)}
    separate.update({n: g for (n, _), g in zip(ge_named, ge_grads, strict=True)})
    assert separate.keys() == combined.keys()
    for name, grad in separate.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(combined[name], grad, rtol=1e-5, atol=1e-8, msg=name)


def test_one_step_changes_encoder_generator_and_discriminator():
    method = _bigan()
    before = {n: p.detach().clone() for n, p in method.named_parameters()}
    optimizer = method.configure_optimizer(_optim(weight_decay=0.0))
    method(*_step(_images())).loss.backward()
    optimizer.step()
    after = dict(method.named_parameters())
    for name, p in after.items():
        changed = not torch.equal(before[name], p.detach())
        frozen = name.startswith(("backbone.fc6.", "backbone.fc7."))
        assert changed != frozen, name  # everything trains except fc6/fc7
    for prefix in ("backbone.convs.conv1.", "encoder_head.", "generator.", "discriminator."):
        assert any(n.startswith(prefix) for n in after)


def test_adam_with_the_reference_settings():
    method = _bigan()
    optimizer = method.configure_optimizer(_optim())
    assert isinstance(optimizer, torch.optim.Adam)
    decayed, gains = optimizer.param_groups
    assert decayed["betas"] == (0.5, 0.999) and decayed["lr"] == 2e-4
    assert decayed["weight_decay"] == 2.5e-5 and gains["weight_decay"] == 0.0
    grouped = [id(p) for g in optimizer.param_groups for p in g["params"]]
    trainable = [id(p) for p in method.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable) and len(set(grouped)) == len(grouped)
    assert id(method.backbone.fc6[1].weight) not in grouped
    with pytest.raises(InputError, match="beta1"):
        method.configure_optimizer(_optim(momentum=1.0))


def test_rotnet_keeps_its_sgd():
    torch.manual_seed(0)
    optimizer = RotNet(AlexNet(MODEL)).configure_optimizer(
        _optim(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True, optimizer="sgd")
    )
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert group["nesterov"] and group["momentum"] == 0.9 and group["weight_decay"] == 5e-4


def test_pictures_are_grids_of_samples_and_reconstruction_pairs():
    method = _bigan()
    grids = method.pictures(_images(32))
    # 8 per row, 32 px each with 2 px padding: 64 samples, and 32 (x, G(E(x))) pairs.
    assert grids["samples"].shape == (274, 274, 3) and grids["recons"].shape == (274, 274, 3)
    assert grids["samples"].dtype == "uint8" and method.training
    assert set(method.pictures(None)) == {"samples"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gan_size": 48}, "power of two"),
        ({"latent_dim": 0}, ">= 1"),
        ({"gan_width": 0}, ">= 1"),
    ],
)
def test_bad_options_are_input_errors(options, message):
    with pytest.raises(InputError, match=message):
        _bigan(**options)
