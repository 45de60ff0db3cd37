import pytest
import torch

from sslx.errors import InputError
from sslx.train.methods.bigan.nets import Generator, JointDiscriminator
from sslx.train.methods.bigan.spec import stride2_steps


@pytest.mark.parametrize(("size", "steps"), [(8, 1), (32, 3), (64, 4), (128, 5)])
def test_generator_and_discriminator_shapes(size, steps):
    assert stride2_steps(size) == steps
    g, d = Generator(16, size, width=4), JointDiscriminator(16, size, width=4)
    z = torch.rand(3, 16) * 2 - 1
    images = g(z)
    assert images.shape == (3, 3, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert d(images, z).shape == (3,)


def test_reference_widths_at_64_px():
    g, d = Generator(200, 64, 64), JointDiscriminator(200, 64, 64)
    assert g.start_channels == 512  # 4x4x512 -> ... -> 3
    assert [b.conv.out_channels for b in g.blocks] == [256, 128, 64]
    assert g.out.out_channels == 3
    assert d.first.out_channels == 64
    assert [b.conv.out_channels for b in d.blocks] == [128, 256, 512]
    assert not hasattr(d.first, "bn")  # BatchNorm everywhere except on the first layer


def test_discriminator_is_joint_in_image_and_latent():
    torch.manual_seed(0)
    d = JointDiscriminator(16, 32, width=4)
    images, z = torch.rand(4, 3, 32, 32) * 2 - 1, torch.rand(4, 16) * 2 - 1
    base = d(images, z)
    assert not torch.allclose(base, d(images, -z))
    assert not torch.allclose(base, d(-images, z))


@pytest.mark.parametrize("size", [4, 48, 0])
def test_bad_gan_size_is_an_input_error(size):
    with pytest.raises(InputError, match="power of two"):
        stride2_steps(size)
