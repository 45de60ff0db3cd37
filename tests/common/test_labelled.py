import shutil
from pathlib import Path

import numpy as np
import pytest

from sslx.common.labelled import held_out_split, load_labelled
from sslx.errors import InputError


def test_held_out_split_is_stratified_fixed_and_disjoint():
    targets = [0] * 30 + [1] * 10
    train, val = held_out_split(targets, 0.2, seed=4)
    assert not set(train) & set(val) and sorted(train + val) == list(range(40))
    assert sum(targets[i] == 0 for i in val) == 6 and sum(targets[i] == 1 for i in val) == 2
    assert (train, val) == held_out_split(targets, 0.2, seed=4)
    assert val != held_out_split(targets, 0.2, seed=5)[1]


def test_image_folder_items_are_uint8_rgb_with_labels(image_folder):
    data = load_labelled("imagefolder", image_folder, val_fraction=0.25)
    assert len(data.train) == 45 and len(data.val) == 15
    image, label = data.train[0]
    assert image.shape == (3, 24, 24) and image.dtype.is_floating_point is False
    assert data.classes == ["blue", "green", "red"] and label in (0, 1, 2)


def test_cifar_pickles_use_their_test_split_unless_asked_to_hold_out(cifar_root):
    data = load_labelled("cifar10", cifar_root)
    assert data.info["format"] == "cifar-pickles" and data.info["val"] == "official test split"
    assert len(data.classes) == 10 and data.train[0][0].shape == (3, 32, 32)
    held = load_labelled("cifar10", cifar_root, val_fraction=0.25)
    assert len(held.train) + len(held.val) == len(data.train)
    red = np.asarray(held.train[0][0]).mean(axis=(1, 2))
    assert red.argmax() == 0  # the first class is red: channels are R, G, B


def test_bad_layouts_are_input_errors(tmp_path, image_folder):
    with pytest.raises(InputError, match="dataset path not found"):
        load_labelled("imagefolder", tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(InputError, match="no class folders"):
        load_labelled("imagefolder", tmp_path / "flat")
    (tmp_path / "tree" / "cat").mkdir(parents=True)
    (tmp_path / "tree" / "dog").mkdir()
    with pytest.raises(InputError, match="no images in class folder"):
        load_labelled("imagefolder", tmp_path / "tree")
    with pytest.raises(InputError, match="10 class folders"):
        load_labelled("cifar10", image_folder)


def test_a_link_loop_in_a_class_folder_lists_each_image_once(image_folder, tmp_path):
    """torchvision's walk would follow the loop 40 levels deep and list every image ~40
    times, so that a held-out split shares images with training."""
    from sslx.common.labelled import image_folder as read_folder

    root = shutil.copytree(image_folder, tmp_path / "images")
    (root / "red" / "loop").symlink_to(root / "red", target_is_directory=True)
    (root / "green" / "elsewhere").symlink_to(root / "blue", target_is_directory=True)
    plain = read_folder(image_folder)
    looped = read_folder(root)
    assert len(looped.samples) == len(plain.samples)
    names = [Path(p).relative_to(root).as_posix() for p, _ in looped.samples]
    assert names == [Path(p).relative_to(image_folder).as_posix() for p, _ in plain.samples]
