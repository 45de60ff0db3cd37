"""Method defaults that come from the reference code, pinned."""

from sslx.train.methods import SPECS


def test_rotnet_lr_is_the_one_its_lut_applies_from_epoch_0():
    """gidariss/FeatureLearningRotNet config/ImageNet_RotNet_AlexNet.py: LUT_lr
    [(15, 0.01), (30, 0.001), (45, 0.0001), (50, 0.00001)] is applied before every epoch,
    so the run uses 0.01 divided by 10 at epochs 15, 30 and 45 (its nominal 0.1 never)."""
    d = SPECS["rotnet"].defaults
    assert (d.lr, d.lr_milestones, d.lr_gamma, d.epochs) == (0.01, (15, 30, 45), 0.1, 50)


def test_each_method_has_its_own_default_input_size(tmp_path):
    """jeffdonahue/bigan README (ImageNet): --crop_size 64; the others train at 224."""
    assert {name: s.defaults.input_size for name, s in SPECS.items()} == {
        "bigan": 64,
        "byol": 224,
        "deepcluster": 224,
        "dino": 224,
        "rotnet": 224,
        "simclr": 224,
        "simsiam": 224,
        "supervised": 224,
    }
