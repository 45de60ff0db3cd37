"""One network through the evaluations `--eval` names: the linear probes (`run`), and kNN
and k-means cluster quality per layer (`neighbours`) on the same cached features.

kNN's memory is the training split and its queries the validation split; k-means clusters
the validation split. Each of the two keeps its results in the state folder, layer by
layer (`state/NAME.knn.json`, `state/NAME.cluster.json`), keyed by what decides them, so a
rerun of the same command skips what is done and a changed setting is refused rather than
answered with old numbers (docs/probe.md).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from sslx.atomic import write_json_atomic
from sslx.common.knn import KNN_SETTINGS, knn_accuracies, knn_name
from sslx.common.labelled import LabelledSplit
from sslx.errors import InputError
from sslx.probe.config import ProbeConfig, ProbeOptions
from sslx.probe.features import FeatureCache, FrozenTrunk, NetworkCaches, features_key
from sslx.probe.neighbours import (
    CLUSTER_ITERATIONS,
    CLUSTER_RESTARTS,
    cluster_backend,
    cluster_quality,
    layer_features,
)
from sslx.probe.run import Network, ProbeResult, _slug, probe_network, resolved
from sslx.train.taps import probe_dims

KNN, CLUSTER = "knn", "cluster"


def evaluate_network(
    network: Network,
    data: LabelledSplit,
    config: ProbeConfig,
    options: ProbeOptions,
    state_dir: Path,
) -> ProbeResult:
    """The evaluations of `config.evals` on one network; the linear probe's fields stay
    empty without "linear", and `knn` / `cluster` without theirs."""
    options, device = resolved(options)
    slug = _slug(network.name)
    cache_dir = options.cache_dir / slug if options.cache_dir else None
    caches = NetworkCaches(network, data, config, options, cache_dir)
    layers = config.layers_of(network.model.config)
    if "linear" in config.evals:
        result = probe_network(network, data, config, options, state_dir / f"{slug}.pt", caches)
    else:
        geometry = network.model.config
        dims = probe_dims(geometry, layers)
        size = geometry.input_size
        result = ProbeResult(network.name, size, dims, {}, {}, {}, {}, network.source)
    trunk: list[FrozenTrunk] = []  # built once, if a layer needs features

    def features(names: tuple[str, ...]) -> list[FeatureCache]:
        if not trunk:
            trunk.append(FrozenTrunk(network.model, layers).to(device))
        before = caches.seconds
        splits = caches.get(trunk[0], names, f"--eval {','.join(config.evals)}")
        if caches.seconds > before:
            result.seconds["extract"] = result.seconds.get("extract", 0.0) + caches.seconds - before
        return splits

    for name in (KNN, CLUSTER):
        if name not in config.evals:
            continue
        path = state_dir / f"{slug}.{name}.json"
        per_layer, seconds = _evaluate(name, network, data, config, layers, path, features, options)
        setattr(result, name, per_layer)
        result.seconds[name] = seconds
    return result


def evaluation_key(name: str, network: Network, data: LabelledSplit, config: ProbeConfig) -> str:
    """What decides an evaluation's numbers besides the layer: the features (the network,
    the data split, the transform) and the evaluation's own protocol."""
    if name == KNN:
        protocol: dict = {"settings": [list(s) for s in KNN_SETTINGS], "queries": "centre crop"}
    else:
        protocol = {
            "seed": config.seed,
            "restarts": CLUSTER_RESTARTS,
            "iterations": CLUSTER_ITERATIONS,
            "backend": cluster_backend().name,  # FAISS and torch draw other clusterings
            "rows": "validation, L2-normalised, centre crop",
        }
    record = {"evaluation": name, **features_key(network, data, config), "protocol": protocol}
    return json.dumps(record, sort_keys=True, default=str)


def load_evaluation(path: Path, key: str) -> dict:
    """{"layers": {layer: result}, "seconds": {layer: s}} stored at `path` for `key`, or
    empty ones; a damaged file or one of other settings is a one-line InputError."""
    if not path.is_file():
        return {"layers": {}, "seconds": {}}
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise InputError(
            f"{path} is not a readable evaluation state ({type(e).__name__}); "
            "delete it to compute that evaluation again"
        ) from None
    shape_ok = isinstance(state, dict) and all(
        isinstance(state.get(part), dict) for part in ("layers", "seconds")
    )
    if not shape_ok or not isinstance(state.get("fingerprint"), str):
        raise InputError(f"{path} is a damaged evaluation state; delete it to compute it again")
    if state["fingerprint"] != key:
        raise InputError(
            f"{path} is an evaluation of another network, dataset or setting; "
            "use another --out, or delete it to start over"
        )
    return {"layers": state["layers"], "seconds": state["seconds"]}


def _evaluate(name, network, data, config, layers, path, features, options):
    """Each layer's result of evaluation `name`, from the state or computed and stored
    there at once, and the seconds they took."""
    key = evaluation_key(name, network, data, config)
    state = load_evaluation(path, key)
    done = [layer for layer in layers if layer in state["layers"]]
    if done:
        print(
            f"sslx: {network.name}'s {name}: {len(done)} of {len(layers)} layers done ({path})",
            file=sys.stderr,
        )
    todo = [layer for layer in layers if layer not in state["layers"]]
    if not todo:
        return {layer: state["layers"][layer] for layer in layers}, _seconds(state, layers)
    *train, val = features(("train", "val") if name == KNN else ("val",))
    backend = cluster_backend() if name == CLUSTER else None
    classes = len(data.classes)
    for layer in todo:
        t0 = time.perf_counter()
        queries = layer_features(val, layer)
        if name == KNN:
            memory, labels = layer_features(train[0], layer), train[0].labels
            device = torch.device(options.device)
            found = knn_accuracies(memory, labels, queries, val.labels, classes, device=device)
            outcome = {knn_name(k, t): scores for (k, t), scores in found.items()}
        else:
            outcome = cluster_quality(
                queries, val.labels, classes, config.seed, layer, backend=backend
            )
        state["layers"][layer] = outcome
        state["seconds"][layer] = time.perf_counter() - t0
        write_json_atomic(path, {"fingerprint": key, **state}, indent=1)
        if options.progress:
            print(f"sslx: {network.name} {layer} {name}: {_summary(outcome)}", file=sys.stderr)
    return {layer: state["layers"][layer] for layer in layers}, _seconds(state, layers)


def _seconds(state: dict, layers: tuple[str, ...]) -> float:
    return sum(state["seconds"].get(layer, 0.0) for layer in layers)


def _summary(outcome: dict) -> str:
    """One line of a layer's numbers, in percent."""
    if "nmi" in outcome:
        return ", ".join(f"{m.upper()} {100 * outcome[m]:.1f}" for m in ("nmi", "ami", "ari"))
    return ", ".join(f"{key} top-1 {100 * v['top1']:.1f}%" for key, v in outcome.items())
