import torch

from sslx.train.methods.rotnet.method import rotate_batch


def test_rotate_batch_makes_four_labelled_rotations():
    img = torch.zeros(1, 1, 4, 4)
    img[0, 0, 0, 3] = 1.0  # top-right corner
    imgs = torch.cat([img, 2 * img])
    rotated, labels = rotate_batch(imgs)
    assert rotated.shape == (8, 1, 4, 4)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    corner = [tuple(torch.nonzero(rotated[i, 0])[0].tolist()) for i in range(0, 8, 2)]
    # counter-clockwise: top-right -> top-left -> bottom-left -> bottom-right
    assert corner == [(0, 3), (0, 0), (3, 0), (3, 3)]
    assert torch.equal(rotated[1], 2 * rotated[0])
