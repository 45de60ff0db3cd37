"""report.html: a probe's results as one page that opens by double-click (issue 27).

No server and no network: pictures are `data:` URIs, the style is inline, there is no
script, and the page's Content-Security-Policy forbids loading anything else, so a page
that would reach out fails loudly in the browser's console rather than quietly.
Every string that comes from user data (network names, paths, config values) goes
through `html.escape`; the static text does too, so nothing reaches the page raw.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sslx.probe.run import Network
from sslx.probe.viz import filters_image, filters_title
from sslx.train.checkpoint import load_checkpoint

REPORT_NAME = "report.html"
NUMBER = re.compile(r"^([+\-−]?[0-9.]+)?$")  # a cell of numbers, or an empty one
NUM = ' class="num"'

# img-src data: only, inline style only, nothing else (no script, no fetch, no frame).
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 64em;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
h4 { font-size: 0.95em; margin: 1em 0 0.3em; color: #555; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left;
         vertical-align: top; }
thead th { background: #f2f2f2; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.settings th, table.settings td { font-family: ui-monospace, monospace;
                                       font-size: 0.9em; overflow-wrap: anywhere; }
table.settings th { font-weight: normal; color: #555; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
"""


@dataclass(frozen=True)
class NetworkPanel:
    """What the page shows of one network beyond its numbers: made once per probe, since
    the report is rewritten after every network."""

    name: str
    filters_png: bytes  # the conv1 filters picture of `sslx viz filters`, titled
    filters_caption: str
    source: dict  # where the network came from (checkpoint, method, step; or random init)
    training: dict | None  # the checkpoint's training config; None for an untrained network


def network_panels(networks: Sequence[Network]) -> list[NetworkPanel]:
    """One panel per network: its conv1 filters and, for a checkpoint, its training config."""
    panels = []
    for net in networks:
        caption = filters_title(net.name, net.model)
        picture = io.BytesIO()
        filters_image(net.model, title=caption).save(picture, format="PNG")
        checkpoint = net.source.get("checkpoint")
        # The checkpoint's `config` record, the run's config.yaml (docs/checkpoints.md),
        # read through the checkpoint loader: tensors and plain containers only.
        training = load_checkpoint(checkpoint)["config"] if checkpoint else None
        panels.append(NetworkPanel(net.name, picture.getvalue(), caption, net.source, training))
    return panels


def report_page(
    meta: dict,
    tables: Sequence[Sequence[Sequence[str]]],
    notes: Sequence[str],
    plots: Sequence[tuple[bytes, str]],
    panels: Sequence[NetworkPanel] = (),
    published: Sequence[Sequence[Sequence[str]]] = (),
    published_notes: Sequence[str] = (),
    title: str = "Linear probes per layer",
) -> str:
    """The whole page: title, `tables` (each a header row, then one row per network, as
    `report.table_rows` makes them), `notes` (the probe dims), with `--reference` the
    `published` tables and their `published_notes` (sources), the `plots` (each a PNG and
    its alt text: accuracy.png, knn.png, cluster.png as written), each network's panel and
    the probe's own settings (`meta`, as in results.json)."""
    data = meta.get("data") or {}
    if "dataset" in data:
        title += f": {data['dataset']}, val: {data.get('val', '')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(POLICY)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no favicon request (a console error on file://)
        f"<title>{_e(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(title)}</h1>",
    ]
    if "classes" in data:
        parts.append(f'<p class="sub">{_e(data["classes"])} classes</p>')
    parts.append("<h2>Per layer (%)</h2>")
    parts += [results_table(table) for table in tables]
    if notes:
        parts.append(_list(notes))
    if published:  # apart from ours: numbers from papers, each row with its source
        parts.append("<h2>Published numbers (not measured here)</h2>")
        parts += [results_table(table) for table in published]
        parts.append(_list(published_notes))
    parts += [_image(png, alt) for png, alt in plots]
    if panels:
        parts.append("<h2>Networks</h2>")
        parts += [_panel(panel) for panel in panels]
    parts += ["<h2>Probe settings</h2>", settings_table(meta), "</body>", "</html>", ""]
    return "\n".join(parts)


def results_table(table: Sequence[Sequence[str]]) -> str:
    """A header row, then one row per network: its name, then numbers (right-aligned, as
    is their column's header) and any words (left-aligned: a source, a note)."""
    header, *rows = table
    words = {i for row in rows for i, cell in enumerate(row) if i and not NUMBER.match(cell)}
    head = f'<th scope="col">{_e(header[0])}</th>' + "".join(
        f'<th scope="col"{"" if i in words else NUM}>{_e(cell)}</th>'
        for i, cell in enumerate(header[1:], 1)
    )
    body = "".join(
        f'<tr><th scope="row">{_e(row[0])}</th>'
        + "".join(
            f"<td{'' if i in words else NUM}>{_e(cell)}</td>" for i, cell in enumerate(row[1:], 1)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _list(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in items) + "</ul>"


def settings_table(settings: dict) -> str:
    """Nested settings as one key / value table, nested keys joined with dots."""
    rows = "".join(
        f"<tr><th>{_e(key)}</th><td>{_e(_text(value))}</td></tr>" for key, value in _flat(settings)
    )
    return f'<table class="settings"><tbody>{rows}</tbody></table>'


def png_data_uri(png: bytes) -> str:
    """`png` inside the page: base64 text, which never needs escaping."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _panel(panel: NetworkPanel) -> str:
    parts = [
        "<section>",
        f"<h3>{_e(panel.name)}</h3>",
        _image(panel.filters_png, panel.filters_caption),
        "<h4>Network</h4>",
        settings_table(panel.source),
    ]
    if panel.training is not None:
        parts += ["<h4>Training config (the checkpoint's)</h4>", settings_table(panel.training)]
    return "\n".join([*parts, "</section>"])


def _image(png: bytes, alt: str) -> str:
    return f'<img src="{png_data_uri(png)}" alt="{_e(alt)}">'


def _flat(settings: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flat(value, f"{name}.")
        else:
            yield name, value


def _text(value: Any) -> str:
    """Strings as they are, everything else as in results.json (null, true, [1, 2])."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
