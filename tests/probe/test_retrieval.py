"""`sslx viz neighbours`: the neighbours against hand-made answers and a float64 brute-force
cosine sort, the fixed choice of queries, the picture's layout, and the command end to end
(one panel per network, the probe's feature cache reused)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sslx.atomic import save_torch_atomic
from sslx.cli import main
from sslx.common.labelled import load_labelled
from sslx.errors import InputError
from sslx.probe import features
from sslx.probe.config import ProbeConfig, ProbeOptions
from sslx.probe.data import Transformed, eval_transform
from sslx.probe.features import FeatureCache, FrozenTrunk, extract_features
from sslx.probe.networks import random_network
from sslx.probe.retrieval import (
    BORDER,
    CAPTION_H,
    GAP,
    MARGIN,
    OTHER,
    PAD,
    QUERY,
    ROW_PAD,
    SAME,
    SEPARATION,
    Retrieval,
    middle_layer,
    neighbours_figure,
    pick_queries,
    retrieval_panel,
    retrieve,
    search_caches,
)
from sslx.probe.viz import titled
from sslx.train.checkpoint import build_checkpoint
from sslx.train.model import ModelConfig

sys.path.insert(0, str(Path(__file__).parents[1]))
from toy_features import blobs, on_circle

SMALL = ModelConfig(input_size=32, classifier_width=16)
FAST = "--workers 0 --quiet".split()


def _brute_force(memory: torch.Tensor, queries: torch.Tensor, k: int):
    """Float64 cosine similarities, sorted descending, ties to the lower index."""
    m = memory.double() / memory.double().norm(dim=1, keepdim=True)
    q = queries.double() / queries.double().norm(dim=1, keepdim=True)
    similarity = (q @ m.T).numpy()
    order = [np.lexsort((np.arange(len(row)), -row))[:k] for row in similarity]
    return np.take_along_axis(similarity, np.array(order), 1), np.array(order)


def test_hand_made_neighbours_come_in_order_of_angle():
    # Memory points at these angles; the query at 0 degrees: nearest 5, 10, -20, then 50.
    memory = FeatureCache({"conv1": on_circle([50, 10, -20, 5, 170]).half()}, torch.arange(5))
    query = FeatureCache({"conv1": on_circle([0]).half()}, torch.tensor([0]))
    similarity, index = search_caches(memory, query, "conv1", [0], 4)
    assert index.tolist() == [[3, 1, 2, 0]]
    expected = [np.cos(np.radians(a)) for a in (5, 10, 20, 50)]
    assert similarity[0].tolist() == pytest.approx(expected, abs=1e-3)  # float16 rows


def test_the_neighbours_are_a_float64_cosine_sort_of_the_centre_crops():
    train_x, train_y = blobs(30, 3, 16, spread=1.5, seed=1)
    centre, val_y = blobs(4, 3, 16, spread=1.5, seed=2)
    # A ten-crop cache: crop 4 (TenCrop's centre) holds the features, the other crops
    # noise, so a search on any other crop, or on their mean, finds other neighbours.
    crops = torch.randn(len(centre), 10, 16, generator=torch.Generator().manual_seed(3)).half()
    crops[:, 4] = centre
    train = FeatureCache({"layer2": train_x}, train_y)
    val = FeatureCache({"layer2": crops.flatten(0, 1)}, val_y, crops=10)
    picked = pick_queries(val_y, 3)
    similarity, index = search_caches(train, val, "layer2", picked, 7)
    want_similarity, want_index = _brute_force(train_x, centre[picked], 7)
    assert index.tolist() == want_index.tolist()
    assert similarity.numpy() == pytest.approx(want_similarity, abs=1e-5)


def test_queries_are_the_first_image_of_classes_spread_over_the_classes_present():
    labels = [3, 1, 1, 0, 5, 3, 0, 5]  # classes 0, 1, 3, 5 first seen at 3, 1, 0, 4
    assert pick_queries(labels, 4) == [3, 1, 0, 4]
    assert pick_queries(labels, 2) == [3, 0]  # classes 0 and 3: the first and third
    assert pick_queries(labels, 1) == [3]
    with pytest.raises(InputError, match="holds images of only 4 classes"):
        pick_queries(labels, 5)
    assert (middle_layer("alexnet"), middle_layer("resnet18")) == ("conv3", "layer2")


def test_retrieve_searches_the_training_split_for_validation_images(image_folder):
    data = load_labelled("imagefolder", image_folder)
    net = random_network(SMALL, seed=0)
    config = ProbeConfig(ten_crop=False)
    options = ProbeOptions(workers=0, device="cpu", quiet=True)
    found = retrieve(net, data, config, options, "conv2", 3, 5)
    # The same features extracted independently, searched by brute force.
    trunk = FrozenTrunk(net.model, ("conv2",))

    def extract(split):
        dataset = Transformed(split, eval_transform(32, config.crop_ratio))
        return extract_features(
            trunk, dataset, batch_size=192, workers=0, device=torch.device("cpu"), progress=False
        )

    train, val = extract(data.train), extract(data.val)
    assert found.queries == pick_queries(val.labels, 3)
    assert sorted(found.query_labels) == [0, 1, 2]
    queries = val.features["conv2"][found.queries]
    similarity, index = _brute_force(train.features["conv2"], queries, 5)
    assert found.neighbours == index.tolist()
    assert np.array(found.similarities) == pytest.approx(similarity, abs=1e-5)
    assert found.labels == train.labels[index].tolist()


def _result(name="net", side=16, labels=((0, 1, 0), (2, 2, 1))) -> Retrieval:
    return Retrieval(
        name=name,
        layer="conv3",
        input_size=side,
        queries=[0, 1],
        query_labels=[0, 2],
        neighbours=[[5, 6, 7], [8, 9, 10]],
        similarities=[[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]],
        labels=[list(row) for row in labels],
    )


def _views(split: str, index: int, size: int) -> torch.Tensor:
    """Image i of a split: one colour, (index * 20, 100 or 200, 50), size x size."""
    colour = torch.tensor([index * 20, 100 if split == "val" else 200, 50], dtype=torch.uint8)
    return colour[:, None, None].expand(3, size, size).clone()


def test_the_panel_puts_queries_frames_and_images_where_expected():
    result = _result()
    image = retrieval_panel(result, _views, ["cat", "dog", "ship"])
    cell = 16 * 6 + 2 * BORDER  # 16 px images enlarged 6 times to reach 96 px
    assert image.size == (
        2 * MARGIN + cell + GAP + 3 * cell + 2 * PAD,
        2 * MARGIN + CAPTION_H + 2 * (cell + CAPTION_H) + ROW_PAD,
    )
    assert result.same_class() == [2, 2] and result.fraction() == pytest.approx(4 / 6)
    for r in range(2):
        top = MARGIN + CAPTION_H + r * (cell + CAPTION_H + ROW_PAD)
        assert image.getpixel((MARGIN, top)) == QUERY
        assert image.getpixel((MARGIN + cell // 2, top + cell // 2)) == (r * 20, 100, 50)
        for j in range(3):
            left = MARGIN + cell + GAP + j * (cell + PAD)
            same = result.labels[r][j] == result.query_labels[r]
            assert image.getpixel((left + 1, top + cell - 2)) == (SAME if same else OTHER)
            index = result.neighbours[r][j]
            inside = (left + BORDER, top + BORDER)  # the image's first pixel
            assert image.getpixel(inside) == (index * 20, 200, 50)
    # The networks side by side under the figure's title, each under its own.
    other = _result("other", side=32, labels=((1, 1, 1), (2, 0, 2)))
    figure = neighbours_figure([result, other], _views, ["cat", "dog", "ship"], "the title")
    heading = "other, conv3: 2/6 neighbours of the query's class (33%)"
    second = titled(retrieval_panel(other, _views, ["cat", "dog", "ship"]), heading)
    first = titled(image, "net, conv3: 4/6 neighbours of the query's class (67%)")
    band = titled(Image.new("RGB", (1, 1)), "the title").height - 1
    assert figure.size == (first.width + SEPARATION + second.width, band + second.height)
    assert figure.crop((first.width + SEPARATION, band, figure.width, figure.height)).tobytes() == (
        second.tobytes()
    )


def _checkpoint(folder: Path) -> Path:
    payload = build_checkpoint(
        config={},
        model=SMALL,
        method="rotnet",
        heads={},
        progress={},
        backbone=random_network(SMALL, seed=7).model.state_dict(),
    )
    folder.mkdir()
    save_torch_atomic(payload, folder / "checkpoint.pt")
    return folder


def _refuse(*args, **kwargs):
    raise AssertionError("features extracted again")


def test_the_cli_draws_a_panel_per_network_and_reuses_its_cache(
    image_folder, tmp_path, capsys, monkeypatch
):
    run = _checkpoint(tmp_path / "one-image")
    args = [
        *("viz", "neighbours", "--checkpoint", str(run), "--random-init"),
        *("--data-dir", str(image_folder), "--queries", "3", "--neighbours", "4"),
        *("--cache-dir", str(tmp_path / "cache"), *FAST),
    ]
    assert main([*args, "--out", str(tmp_path / "a.png")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split(" ")[:2] for line in lines] == [
        ["one-image", "conv3:"],
        ["random", "conv3:"],
    ]
    assert all("of the 4 nearest training images share the query's class" in x for x in lines)
    assert f"wrote {tmp_path / 'a.png'} (" in captured.err
    with Image.open(tmp_path / "a.png") as picture:
        cell = 32 * 3 + 2 * BORDER  # 32 px networks, their images enlarged 3 times
        # Two panels of 3 rows of a query and 4 neighbours, under two title bands.
        assert picture.width == 2 * (2 * MARGIN + 5 * cell + GAP + 3 * PAD) + SEPARATION
        assert picture.height > 2 * MARGIN + 4 * CAPTION_H + 3 * cell + 2 * ROW_PAD + 2 * 14
    # Again from the cache, with no feature extracted: the same bytes.
    monkeypatch.setattr(features.FrozenTrunk, "forward", _refuse)
    assert main([*args, "--out", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert capsys.readouterr().out.splitlines() == lines


def test_a_cache_the_probe_wrote_is_read_not_extracted_again(
    knn_image_folder, tmp_path, monkeypatch, capsys
):
    data = ["--data-dir", str(knn_image_folder), "--cache-dir", str(tmp_path / "cache")]
    network = [*"--random-init --size 32 --layers conv1,conv2".split(), *data, *FAST]
    probe = "--eval knn --epochs 1 --batch-size 32 --lr-milestones 1".split()
    assert main(["probe", *network, *probe, "--out", str(tmp_path / "probe")]) == 0
    capsys.readouterr()
    monkeypatch.setattr(features.FrozenTrunk, "forward", _refuse)
    draw = ["viz", "neighbours", *network, "--batch-size", "32", "--layer", "conv2"]
    assert main([*draw, "--queries", "3", "--out", str(tmp_path / "n.png")]) == 0
    assert capsys.readouterr().out.startswith("random conv2: ")
    assert (tmp_path / "n.png").read_bytes()[:4] == b"\x89PNG"
