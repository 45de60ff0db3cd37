"""`sslx probe --reference`: the published rows as declared, ours minus theirs, and where the
reports put them (results.md, results.json, report.html, accuracy.png), apart from ours."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from sslx.cli import main
from sslx.errors import InputError
from sslx.probe import ablation
from sslx.probe.reference_report import compare
from sslx.probe.references import SETS, TABLE3, ZHANG_IMAGENET, parse_sets, reference_sets
from sslx.probe.report import accuracy_figure, write_report
from sslx.probe.run import ProbeResult

sys.path.insert(0, str(Path(__file__).parents[1]))
from layout import REPO, package_files

CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")
CIFAR = {"dataset": "cifar10", "classes": 10, "val": "official test split"}
IMAGENET = {"dataset": "imagefolder", "classes": 1000, "val": "folder val/"}
RANDOM = {"random_init": {"arch": "alexnet", "input_size": 32}, "init_seed": 0}


def _result(name, top1, source, size=32) -> ProbeResult:
    layers = CONVS[: len(top1)]
    return ProbeResult(
        name=name,
        input_size=size,
        dims=dict.fromkeys(layers, 9600),
        top1=dict(zip(layers, top1, strict=True)),
        top5=dict(zip(layers, top1, strict=True)),
        train_loss={n: [1.0] for n in layers},
        source=source,
    )


def test_the_numbers_are_the_published_ones():
    """Typed here again from the papers: a typo in the one declaration fails."""
    zhang = {row.in_paper: row.top1 for row in ZHANG_IMAGENET.rows}
    assert zhang == {
        "ImageNet-labels": (19.3, 36.3, 44.2, 48.3, 50.5),
        "Gaussian": (11.6, 17.1, 16.9, 16.3, 14.1),
    }
    assert ZHANG_IMAGENET.layers == CONVS
    assert [row.kind for row in ZHANG_IMAGENET.rows] == ["supervised", "random"]
    assert {row.mark: row.top1 for row in TABLE3.rows} == {
        "a": (66.5, 70.1, 72.4, 75.9),
        "b": (57.8, 55.5, 54.2, 47.3),
        "c": (57.9, 56.2, 54.2, 47.8),
        "d": (58.9, 58.0, 57.0, 49.8),
        "e": (61.4, 58.8, 56.1, 47.5),
        "f": (67.9, 69.3, 67.9, 59.1),
        "g": (64.9, 63.6, 61.0, 53.4),
        "h": (67.6, 69.9, 68.0, 60.7),
        "i": (68.1, 71.3, 69.5, 62.4),
        "j": (68.1, 72.3, 70.8, 63.5),
    }
    assert TABLE3.layers == CONVS[:4]


def test_each_set_names_its_paper_and_table():
    zhang, asano = ZHANG_IMAGENET.source, TABLE3.source
    assert "Split-Brain Autoencoders" in zhang.title and zhang.venue == "CVPR 2017"
    assert zhang.table == "Table 2" and zhang.url == "arXiv:1611.09842"
    assert asano.title.startswith("A critical analysis of self-supervision")
    assert (asano.venue, asano.table, asano.url) == ("ICLR 2020", "Table 3", "arXiv:1904.13132")
    assert ZHANG_IMAGENET.benchmark.dataset == "imagenet" and TABLE3.benchmark.dataset == "cifar10"


def test_table3_is_declared_once_and_viz_ablation_reads_it():
    assert [r.paper for r in ablation.ROWS] == [row.top1 for row in TABLE3.rows]
    assert [r.label for r in ablation.ROWS] == [row.label for row in TABLE3.rows]
    # One row's numbers, as a literal, in the package: only in the declaration.
    holders = [p.name for p in package_files() if "66.5, 70.1, 72.4, 75.9" in p.read_text()]
    assert holders == ["references.py"]


@pytest.mark.parametrize(
    ("given", "sets"),
    [
        (("table3",), ("table3",)),
        (("zhang-imagenet,table3",), ("zhang-imagenet", "table3")),
        (("table3", " zhang-imagenet , table3"), ("table3", "zhang-imagenet")),
        ((), ()),
    ],
)
def test_sets_are_repeated_or_comma_separated(given, sets):
    assert parse_sets(given) == sets
    assert parse_sets(sets) == sets  # its own output, as a stored value comes back


def test_an_unknown_set_is_refused():
    with pytest.raises(InputError, match=r"unknown set\(s\) table4; give one or more of table3"):
        parse_sets(("table3,table4",))


def test_ours_minus_theirs_on_the_same_benchmark():
    ours = _result("random", (0.5, 0.6, 0.55), RANDOM)  # conv1..conv3 probed
    view = compare([TABLE3], [ours], CIFAR)
    (c,) = view.comparisons
    assert c.row.mark == "b" and not c.mismatch
    # Only the layers both have: Table 3 has conv4, ours does not.
    assert c.delta == pytest.approx({"conv1": -7.8, "conv2": 4.5, "conv3": 0.8})
    assert "input: ours 32 px, theirs not stated" in c.stated
    assert "val: ours official test split, theirs not stated" in c.stated
    not_compared = {row.mark: why for _, row, why in view.not_compared}
    assert (
        not_compared["a"] == "no checkpoint of method supervised, trained from scratch, was probed"
    )
    assert not_compared["c"] == "no probed network is paired with it automatically"


def test_zhang_s_rows_are_compared_only_on_imagenet():
    random = _result("random", (0.2, 0.3, 0.3, 0.25, 0.2), RANDOM, size=224)
    supervised = {"method": "supervised", "model": {"arch": "alexnet"}, "checkpoint": "/r"}
    trained = _result("sup", (0.2, 0.4, 0.5, 0.5, 0.5), supervised, size=224)
    rotnet = _result("rot", (0.2,) * 5, {"method": "rotnet", "model": {"arch": "alexnet"}})
    on_cifar = compare([ZHANG_IMAGENET], [random, trained, rotnet], CIFAR)
    assert [(c.ours, c.row.label) for c in on_cifar.comparisons] == [
        ("sup", "supervised"),
        ("random", "random"),
    ]
    for c in on_cifar.comparisons:  # not the same benchmark: nothing subtracted
        assert c.delta == {} and c.stated == ()
        assert c.mismatch == ("dataset: ours cifar10 (10 classes), theirs ImageNet (ILSVRC-2012)",)
    on_imagenet = compare([ZHANG_IMAGENET], [random, trained], IMAGENET)
    sup, rand = on_imagenet.comparisons
    assert sup.delta == pytest.approx(
        {"conv1": 0.7, "conv2": 3.7, "conv3": 5.8, "conv4": 1.7, "conv5": -0.5}
    )
    assert rand.delta == pytest.approx(
        {"conv1": 8.4, "conv2": 12.9, "conv3": 13.1, "conv4": 8.7, "conv5": 5.9}
    )
    assert "input: ours 224 px, theirs 227 px" in rand.stated
    assert "ours is an image folder of 1000 classes, taken for ILSVRC-2012" in rand.stated
    assert any("DeepCluster" in note for note in rand.stated)


def test_a_supervised_run_from_another_checkpoint_is_not_fully_supervised():
    supervised = {"method": "supervised", "model": {"arch": "alexnet"}, "checkpoint": "/r"}
    ours = _result("table4", (0.2,) * 5, supervised, size=224)
    table4 = {"method": "supervised", "init": "/mono.pt", "freeze": ["conv1", "conv2"]}
    scratch = {"method": "supervised", "init": None, "freeze": []}
    assert not compare([ZHANG_IMAGENET], [ours], IMAGENET, {"table4": table4}).comparisons
    (c,) = compare([ZHANG_IMAGENET], [ours], IMAGENET, {"table4": scratch}).comparisons
    assert c.row.kind == "supervised" and len(c.delta) == 5


def test_another_architecture_is_not_the_same_benchmark():
    resnet = {"random_init": {"arch": "resnet18"}}
    ours = _result("random-resnet18", (0.3,) * 5, resnet, size=224)
    (c,) = compare([ZHANG_IMAGENET], [ours], IMAGENET).comparisons
    assert c.delta == {} and c.mismatch == ("architecture: ours resnet18, theirs alexnet",)


@pytest.fixture
def written(tmp_path) -> Path:
    results = [_result("random", (0.5, 0.6, 0.55, 0.5, 0.4), RANDOM)]
    meta = {"data": CIFAR, "config": {"epochs": 36}}
    text = write_report(results, meta, tmp_path, references=("table3", "zhang-imagenet"))
    assert text == (tmp_path / "results.md").read_text().rstrip("\n")
    return tmp_path


def test_results_md_puts_the_published_rows_below_ours_with_their_sources(written):
    text = (written / "results.md").read_text()
    ours, published = text.split("## Published numbers (not measured here)")
    assert "| random | 50.0 |" in ours and "19.3" not in ours
    assert (
        "| (b) random | 57.8 | 55.5 | 54.2 | 47.3 |  | CIFAR-10, AlexNet | [1] Asano" in published
    )
    row = '| random ("Gaussian") | 11.6 | 17.1 | 16.9 | 16.3 | 14.1 | ImageNet (ILSVRC-2012), '
    assert row + "AlexNet, 227 px | [2] Zhang et al. 2017, Table 2 |" in published
    assert '[1] Asano, Rupprecht & Vedaldi, "A critical analysis of self-supervision' in published
    assert '[2] Zhang, Isola & Efros, "Split-Brain Autoencoders' in published
    assert "| random | (b) random [1] | -7.8 | +4.5 | +0.8 | +2.7 |  | input: ours 32" in published
    assert re.search(
        r"\| random \| random \(\"Gaussian\"\) \[2\] (\|  )+\| not the same bench", text
    )


def test_results_json_keeps_them_apart_each_number_with_its_source(written):
    payload = json.loads((written / "results.json").read_text())
    assert [r["name"] for r in payload["results"]] == ["random"]  # measured only
    refs = payload["references"]
    assert refs["sets"] == ["table3", "zhang-imagenet"]
    for row in refs["rows"]:
        for cell in row["top1"].values():
            assert cell["source"] in refs["sources"] and isinstance(cell["value"], float)
    gaussian = next(r for r in refs["rows"] if r["in_paper"] == "Gaussian")
    assert gaussian["top1"]["conv5"] == {"value": 14.1, "source": "zhang2017-table2"}
    assert refs["sources"]["zhang2017-table2"]["table"] == "Table 2"
    same, other = refs["comparisons"]
    assert same["same_benchmark"] and same["ours_minus_theirs_points"]["conv1"] == -7.8
    assert not other["same_benchmark"] and other["ours_minus_theirs_points"] == {}
    rows = list(csv.DictReader((written / "results.csv").open()))
    assert {r["name"] for r in rows} == {"random"}  # the CSV holds what was measured


def test_report_html_shows_them_after_ours(written):
    page = (written / "report.html").read_text()
    assert page.index("Published numbers") > page.index("probe dims")
    assert "[2] Zhang et al. 2017, Table 2" in page and "&quot;Gaussian&quot;" in page
    assert "<td>CIFAR-10, AlexNet</td>" in page  # words are not aligned as numbers


def test_accuracy_png_draws_them_dashed_at_the_plotted_layers():
    ours = _result("random", (0.5, 0.6, 0.55), RANDOM)
    view = compare(reference_sets(("table3", "zhang-imagenet")), [ours], CIFAR)
    fig = accuracy_figure([ours], CIFAR, view)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert lines["random"].get_linestyle() == "-"
    b = lines["(b) random [1], CIFAR-10"]
    assert b.get_linestyle() == "--" and list(b.get_ydata()) == [57.8, 55.5, 54.2]
    assert lines['random ("Gaussian") [2], ImageNet (ILSVRC-2012)'].get_linestyle() == "-."
    plt.close(fig)


def test_probe_writes_them_and_a_new_reference_only_rewrites_the_reports(
    cifar_root, tmp_path, monkeypatch
):
    from sslx.probe import features, run

    out = tmp_path / "probe"
    args = [
        *"probe --random-init --size 32 --layers conv1,conv2 --dataset cifar10".split(),
        *("--data-dir", str(cifar_root), "--out", str(out)),
        *"--epochs 2 --batch-size 16 --lr-milestones 1 --workers 0 --quiet".split(),
        "--cache-features",
    ]
    assert main([*args, "--reference", "zhang-imagenet"]) == 0
    refs = json.loads((out / "results.json").read_text())["references"]
    assert refs["sets"] == ["zhang-imagenet"] and len(refs["rows"]) == 2
    (random,) = [c for c in refs["comparisons"] if c["theirs"] == 'random ("Gaussian")']
    assert random["ours"] == "random" and not random["same_benchmark"]
    assert "not the same benchmark" in (out / "results.md").read_text()
    state = next((out / "state").iterdir())
    saved = state.stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("a finished probe was computed again")

    monkeypatch.setattr(run, "train_probes", refuse)
    monkeypatch.setattr(features.FrozenTrunk, "forward", refuse)
    assert main([*args, "--reference", "table3"]) == 0
    assert state.stat().st_mtime_ns == saved
    text = (out / "results.md").read_text()
    assert "Zhang" not in text and "| random | (b) random [1] |" in text
    assert main(args) == 0  # none: the section is gone
    assert "references" not in json.loads((out / "results.json").read_text())


def test_every_set_is_in_the_help_and_the_docs():
    from sslx.probe.references import REFERENCE

    doc = (REPO / "docs" / "probe.md").read_text()
    for name in SETS:
        assert name in REFERENCE.help and f"`{name}`" in doc
