"""report.html (issue 27): the probe's tables, plot, filters and settings in one page that
opens from disk with nothing else: checked as HTML here, and in headless Chromium."""

from __future__ import annotations

import base64
import io
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from sslx.atomic import save_torch_atomic
from sslx.probe import report
from sslx.probe.html import network_panels
from sslx.probe.networks import checkpoint_network, random_network
from sslx.probe.report import write_report
from sslx.probe.run import Network, ProbeResult
from sslx.train.alexnet import AlexNet
from sslx.train.checkpoint import build_checkpoint
from sslx.train.model import ModelConfig

EVIL = "<script>alert(1)</script>"
LAYERS = ("conv1", "conv2", "conv3")
DATA_DIR = "/data/a&b <c>"  # a user's path, with characters HTML gives meaning to
META = {
    "data": {"dataset": "imagefolder", "val": "held out 0.1 per class", "classes": 3},
    "config": {"lr": 0.01, "layers": list(LAYERS), "data_dir": DATA_DIR},
}
TRAINING = {"method": "rotnet", "optim": {"lr": 0.05, "epochs": 2}, "shards": "/s/<x>"}


def _result(name: str, top1: tuple[float, ...]) -> ProbeResult:
    return ProbeResult(
        name=name,
        input_size=32,
        dims=dict.fromkeys(LAYERS, 9600),
        top1=dict(zip(LAYERS, top1, strict=True)),
        top5={n: min(1.0, 2 * v) for n, v in zip(LAYERS, top1, strict=True)},
        train_loss={n: [1.0] for n in LAYERS},
    )


@pytest.fixture(scope="module")
def networks(tmp_path_factory) -> list[Network]:
    """A tiny checkpoint (named like a script, to test escaping) and the random network."""
    model = ModelConfig(input_size=32, classifier_width=16)
    payload = build_checkpoint(
        config=TRAINING,
        model=model,
        method="rotnet",
        heads={},
        progress={"global_step": 7},
        backbone=AlexNet(model).state_dict(),
    )
    path = tmp_path_factory.mktemp("run") / "checkpoint.pt"
    save_torch_atomic(payload, path)
    trained = checkpoint_network(path)
    return [Network(EVIL, trained.model, trained.source), random_network(model, seed=0)]


@pytest.fixture(scope="module")
def written(networks, tmp_path_factory) -> Path:
    """A probe --out folder as `write_report` leaves it after both networks."""
    out = tmp_path_factory.mktemp("probe")
    results = [_result(EVIL, (0.4, 0.5, 0.55)), _result("random", (0.35, 0.4, 0.333))]
    write_report(results, META, out, network_panels(networks))
    return out


class Page(HTMLParser):
    """What a reader of the page gets: its tables (cell texts), images, text and tags."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[dict] = []
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _page(out: Path) -> Page:
    return Page((out / "report.html").read_text(encoding="utf-8"))


def _markdown_tables(text: str) -> list[list[list[str]]]:
    """The pipe tables of results.md, without their alignment rows."""
    tables, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            if not line.startswith("| ---"):
                rows.append([cell.strip() for cell in line.strip()[1:-1].split("|")])
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def test_the_tables_are_those_of_results_md(written):
    page = _page(written)
    expected = _markdown_tables((written / "results.md").read_text())
    assert len(expected) == 2 and expected[0][0] == ["top1 (%)", *LAYERS]
    assert expected[0][1] == [EVIL, "40.0", "50.0", "55.0"]  # what the page must show too
    assert page.tables[:2] == expected
    for note in ("random (32 px) probe dims: conv1 9600", f"{EVIL} (32 px) probe dims"):
        assert note in "".join(page.text)


def test_every_image_is_an_embedded_png(written):
    images = _page(written).images
    assert len(images) == 3  # the accuracy plot, then both networks' filters
    pictures = []
    for img in images:
        head, _, data = img["src"].partition(",")
        assert head == "data:image/png;base64"
        png = base64.b64decode(data, validate=True)
        pictures.append(Image.open(io.BytesIO(png)))
        assert pictures[-1].format == "PNG" and img["alt"]
    assert (
        base64.b64decode(images[0]["src"].partition(",")[2])
        == (written / "accuracy.png").read_bytes()
    )
    assert images[1]["alt"].startswith(f"conv1 filters of {EVIL}: 96 of 11x11")
    assert pictures[1].width >= 12 * 11 * 4  # the grid of `sslx viz filters`, 12 a row


def test_nothing_is_fetched_and_nothing_runs(written):
    page = _page(written)
    assert not [tag for tag, _ in page.tags if tag in ("script", "iframe", "object", "embed")]
    links = [a[k] for _, a in page.tags for k in ("src", "href") if k in a]
    assert links and all(link.startswith("data:") for link in links)


def test_user_strings_are_shown_as_text(written):
    raw = (written / "report.html").read_text(encoding="utf-8")
    assert EVIL not in raw and "<c>" not in raw and "<x>" not in raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    page = _page(written)
    headings = [t for t in page.text if t == EVIL]
    assert len(headings) >= 3  # a row of each table and its panel's heading
    assert DATA_DIR in page.text and "/s/<x>" in page.text


def test_the_settings_are_shown(written, networks):
    settings = {row[0]: row[1] for table in _page(written).tables[2:] for row in table}
    # The probe's own (results.json's meta), flattened with dots.
    assert settings["config.data_dir"] == DATA_DIR and settings["data.classes"] == "3"
    assert settings["config.layers"] == '["conv1", "conv2", "conv3"]'
    # Each network's source, and the checkpoint's training config.
    assert settings["checkpoint"] == networks[0].source["checkpoint"]
    assert settings["global_step"] == "7" and settings["model.input_size"] == "32"
    assert settings["optim.lr"] == "0.05" and settings["shards"] == "/s/<x>"
    assert settings["init_seed"] == "0"  # the random network's
    assert settings["random_init.arch"] == "alexnet"


def test_write_report_writes_the_page_atomically_with_the_networks_probed_so_far(
    networks, tmp_path, monkeypatch
):
    atomic = []
    real = report.write_text_atomic

    def record(path, text):
        atomic.append(Path(path).name)
        real(path, text)

    monkeypatch.setattr(report, "write_text_atomic", record)
    panels = network_panels(networks)
    write_report([_result("random", (0.3, 0.3, 0.3))], META, tmp_path, panels)
    assert "report.html" in atomic
    page = _page(tmp_path)
    assert len(page.images) == 2 and EVIL not in page.text  # the first network not yet
    assert [t for t in page.text if t.startswith("Linear probes per layer")] == [
        "Linear probes per layer: imagefolder, val: held out 0.1 per class"
    ] * 2  # the window's title and the page's


# --- in a real browser -----------------------------------------------------------------

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")


def _chromium() -> tuple[str, str]:
    """Debian's chromium and chromedriver; skipped without them, except in CI (CI set),
    which must run this test (.ci/run installs them)."""
    found = {name: shutil.which(name) for name in ("chromium", "chromedriver")}
    missing = [name for name, path in found.items() if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        message = f"the browser test needs {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must not skip it")
        pytest.skip(message)
    return found["chromium"], found["chromedriver"]


def test_the_page_loads_in_chromium_without_errors(written):
    chromium, chromedriver = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The given driver: selenium-manager, which would download one, never runs.
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        driver.get((written / "report.html").resolve().as_uri())
        state = driver.execute_script("return document.readyState")
        images = driver.execute_script(
            "return Array.from(document.images, i => [i.complete, i.naturalWidth]);"
        )
        tables = driver.find_elements(By.TAG_NAME, "table")
        cells = [c.text for c in tables[0].find_elements(By.CSS_SELECTOR, "tbody th")]
        heading = driver.find_elements(By.TAG_NAME, "h3")[0].text
        log = driver.get_log("browser")
    finally:
        driver.quit()
    errors = [e for e in log if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    assert state == "complete"
    assert len(images) == 3 and all(done and width > 0 for done, width in images), images
    assert len(tables) >= 4  # top-1, top-5, each network's settings, the probe's
    assert cells == [EVIL, "random"] and heading == EVIL  # the name as text, not a script


def test_sslx_probe_writes_the_page(image_folder, tmp_path, capsys):
    """Through the CLI: the page after a real (tiny) probe, with the random network's panel."""
    from sslx.cli import main

    args = [
        *"probe --random-init --size 32 --layers conv1 --epochs 1 --batch-size 16".split(),
        *"--workers 0 --quiet --cache-features --data-dir".split(),
        str(image_folder),
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    assert "accuracy.png, report.html" in capsys.readouterr().err
    page = _page(tmp_path)
    assert [row[0] for row in page.tables[0]] == ["top1 (%)", "random"]
    assert len(page.images) == 2 and page.images[1]["alt"].startswith("conv1 filters of random")


def test_knn_and_cluster_plots_are_embedded_under_a_per_layer_heading(tmp_path):
    """--eval knn,cluster alone: no accuracy plot, both evaluation plots, exactly as
    written, and a title that does not call them linear probes."""
    knn = {n: {"k20_t0.07": {"top1": 0.3 + i / 10}} for i, n in enumerate(LAYERS)}
    cluster = {n: {"nmi": 0.1, "ami": 0.09, "ari": 0.05} for n in LAYERS}
    result = ProbeResult("random", 32, dict.fromkeys(LAYERS, 9600), {}, {}, {})
    result.knn, result.cluster = knn, cluster
    write_report([result], META, tmp_path)
    page = _page(tmp_path)
    shown = [base64.b64decode(img["src"].partition(",")[2]) for img in page.images]
    assert shown == [(tmp_path / f).read_bytes() for f in ("knn.png", "cluster.png")]
    assert [img["alt"].split()[0] for img in page.images] == ["weighted", "k-means"]
    text = "".join(page.text)
    assert "Per-layer evaluations" in text and "Linear probes" not in text
    assert page.tables[0][1] == ["random", "30.0", "40.0", "50.0"]
