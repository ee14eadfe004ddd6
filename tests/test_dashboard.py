"""Dashboard integration: SVG drawings, trial notes and artifacts, study figures, and an
end-to-end check through optuna-dashboard's HTTP API."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import BinaryIO

import numpy as np
import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore

from optuna_enas import ENASSampler
from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import SearchSpace
from optuna_enas import suggest_architecture
from optuna_enas.dashboard import DashboardCallback
from optuna_enas.dashboard import architecture_svg
from optuna_enas.dashboard import best_so_far
from optuna_enas.dashboard import comparison_svg
from optuna_enas.dashboard import plot_controller_stats
from optuna_enas.dashboard import save_study_figures
from optuna_enas.dashboard._callback import SVG_ATTR
from optuna_enas.dashboard._figures import max_entropy
from optuna_enas.sampler._sampler import STATS_KEY
from optuna_enas.training._evaluator import SupernetEvaluator


_REPO = Path(__file__).resolve().parents[1]
_SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    "space",
    [
        RNNCellSpace(n_nodes=12),
        MacroSpace(n_layers=12),
        MicroSpace(n_nodes=5),
        RNNCellSpace(n_nodes=1),
    ],
    ids=["rnn12", "macro12", "micro5", "rnn1"],
)
def test_architecture_svg_is_valid_and_labels_every_node(space: SearchSpace) -> None:
    arch = space.sample_uniform(np.random.default_rng(0))
    root = ET.fromstring(architecture_svg(space, arch, title="t <&>"))
    assert root.tag == f"{_SVG}svg"
    texts = [t.text or "" for t in root.iter(f"{_SVG}text")]
    assert "t <&>" in texts  # escaped in the file, intact once parsed
    if isinstance(space, RNNCellSpace):
        for i, node in enumerate(space.cell(arch)):
            assert f"{i}: {node.activation}" in texts
        assert any(t.startswith("h(t) = mean(") for t in texts)
    elif isinstance(space, MacroSpace):
        for i, layer in enumerate(space.layers(arch)):
            assert f"{i}: {layer.op}" in texts
        n_skips = sum(len(layer.skips) for layer in space.layers(arch))
        arcs = [p for p in root.iter(f"{_SVG}path") if p.get("stroke") == "#3b6fb6"]
        assert len(arcs) == n_skips
    else:
        assert "normal cell" in texts and "reduction cell" in texts
        assert sum(t.startswith("concat(") for t in texts) == 2


def test_architecture_svg_of_a_custom_space_lists_the_decisions() -> None:
    from optuna_enas import Decision

    space = SearchSpace([Decision("width", (8, 16)), Decision("act", ("relu", "tanh"))])
    svg = architecture_svg(space, {"width": 16, "act": "tanh"})
    texts = [t.text for t in ET.fromstring(svg).iter(f"{_SVG}text")]
    rows = ["width", "other", "16", "act", "other", "tanh"]  # a table: tests/test_nn_dashboard
    assert [t for t in texts[texts.index("choices") + 1 :] if t][:6] == rows


def test_comparison_svg_draws_a_band_and_a_line_per_name() -> None:
    curves = {
        "enas": [best_so_far([5.0, 4.0, 6.0, 3.0], "minimize"), [6.0, 5.0, 5.0, 2.0]],
        "random": [[7.0, 7.0, 4.0, 4.0]],
    }
    root = ET.fromstring(comparison_svg(curves, metric="ppl", title="best"))
    assert len(list(root.iter(f"{_SVG}polygon"))) == 2
    assert len(list(root.iter(f"{_SVG}polyline"))) == 2
    assert best_so_far([1.0, 3.0, 2.0], "maximize") == [1.0, 3.0, 3.0]
    with pytest.raises(ValueError, match="direction"):
        best_so_far([1.0], "up")
    with pytest.raises(ValueError, match="curves"):
        comparison_svg({"x": []}, metric="m", title="t")


def _fake_objective(space: SearchSpace) -> Any:
    def objective(trial: optuna.Trial) -> float:
        arch = suggest_architecture(trial, space)
        return float(sum(space.to_indices(arch)))

    return objective


def test_callback_after_the_trial_and_wrap_during_it(tmp_path: Path) -> None:
    space = RNNCellSpace(n_nodes=3)
    store = FileSystemArtifactStore(str(tmp_path))
    study = optuna.create_study(sampler=ENASSampler(space, seed=0))
    callback = DashboardCallback(space, store, figures_every=None)
    study.optimize(_fake_objective(space), n_trials=2, callbacks=[callback])
    study.optimize(callback.wrap(_fake_objective(space)), n_trials=2, callbacks=[callback])
    attrs = study._storage.get_study_system_attrs(study._study_id)
    t0, t1, t2, t3 = study.get_trials()
    for t in (t0, t1):  # callback only: the dashboard's trial-artifact slot
        keys = [k for k in attrs if k.startswith(f"dashboard:artifacts:{t._trial_id}:")]
        assert len(keys) == 1 and SVG_ATTR not in t.system_attrs
        meta = json.loads(attrs[keys[0]])
        assert meta["mimetype"] == "image/svg+xml"
        with store.open_reader(meta["artifact_id"]) as f:
            assert f.read().startswith(b"<svg")
    for t in (t2, t3):  # wrapped: a regular Optuna trial artifact, and no second copy
        metas = optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
        assert [m.artifact_id for m in metas] == [t.system_attrs[SVG_ATTR]]
        assert not any(k.startswith(f"dashboard:artifacts:{t._trial_id}:") for k in attrs)
    from optuna_dashboard import get_note

    notes = [a for k, a in attrs.items() if ":note_str:" in k]
    assert len(notes) == 4 and all("![architecture](/artifacts/" in n for n in notes)
    assert "fixed_arc: `" in notes[0]
    assert get_note(study) == ""  # the study note is untouched


def test_callback_errors_are_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenStore:
        def open_reader(self, artifact_id: str) -> BinaryIO:
            raise OSError("disk on fire")

        def write(self, artifact_id: str, content_body: BinaryIO) -> None:
            raise OSError("disk on fire")

        def remove(self, artifact_id: str) -> None:
            pass

    space = RNNCellSpace(n_nodes=2)
    callback = DashboardCallback(space, BrokenStore(), figures_every=1)
    study = optuna.create_study()
    with caplog.at_level(logging.WARNING, logger="optuna_enas.dashboard"):
        study.optimize(callback.wrap(_fake_objective(space)), n_trials=2, callbacks=[callback])
    assert len(study.get_trials()) == 2
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials())
    assert "Could not draw trial" in caplog.text
    with pytest.raises(ValueError, match="artifact_store"):
        DashboardCallback(space, object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="figures_every"):
        DashboardCallback(space, tmp_path, figures_every=0)


def test_study_figures_need_enas_stats_for_the_controller_plot() -> None:
    space = RNNCellSpace(n_nodes=2)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(_fake_objective(space), n_trials=3)
    assert save_study_figures(study) == ["enas-best-so-far"]
    with pytest.raises(ValueError, match="enas:stats"):
        plot_controller_stats(study)
    enas = optuna.create_study(sampler=ENASSampler(space, seed=0))
    enas.optimize(_fake_objective(space), n_trials=3)
    assert save_study_figures(enas) == ["enas-best-so-far", "enas-controller"]
    fig = plot_controller_stats(enas)
    assert [trace.name for trace in fig.data] == ["reward", "baseline", "entropy / max"]
    assert list(fig.data[0].x) == [0, 1, 2]


def test_entropy_is_shown_against_its_maximum() -> None:
    """The entropy panel is H / H_max: an untrained controller is near 1, never above it."""
    space = RNNCellSpace(n_nodes=4)
    study = optuna.create_study(sampler=ENASSampler(space, seed=0))
    study.optimize(_fake_objective(space), n_trials=3)
    # H_max of this space: log(#choices) summed over its decisions, computed by hand.
    expected = sum(math.log(len(d.choices)) for d in space.decisions)
    assert all(abs(max_entropy(t) - expected) < 1e-12 for t in study.trials)  # type: ignore[operator]
    stats = [t.system_attrs[STATS_KEY]["entropy"] for t in study.trials]
    fig = plot_controller_stats(study)
    entropy = fig.data[2]
    assert list(entropy.y) == pytest.approx([h / expected for h in stats])
    assert all(0.5 < y <= 1.0 for y in entropy.y)  # an untrained policy is close to uniform
    assert f"max {expected:.4g} nats" in fig.layout.annotations[1].text
    assert tuple(fig.layout.yaxis2.range) == (0, 1.05)


def test_callback_names_the_metric_for_the_dashboard_axes(tmp_path: Path) -> None:
    """optuna-dashboard labels values with study.metric_names ("Objective 0" without)."""
    space = RNNCellSpace(n_nodes=2)
    study = optuna.create_study()
    callback = DashboardCallback(space, tmp_path, figures_every=None)
    study.optimize(_fake_objective(space), n_trials=1, callbacks=[callback])
    assert study.metric_names == ["valid ppl"]
    macro = optuna.create_study(direction="maximize")
    macro_space = MacroSpace(n_layers=2)
    callback = DashboardCallback(macro_space, tmp_path, figures_every=None)
    macro.optimize(_fake_objective(macro_space), n_trials=1, callbacks=[callback])
    assert macro.metric_names == ["valid accuracy"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


@pytest.fixture
def dashboard_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``optuna-enas dashboard`` on 127.0.0.1 (a subprocess), and its database path."""
    db = tmp_path / "d.db"
    optuna.create_study(storage=f"sqlite:///{db}", study_name="placeholder")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "optuna_enas", "dashboard", "--storage", f"sqlite:///{db}"]
        + ["--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(_REPO)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(f"{base}/api/meta")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the dashboard did not start") from None
                time.sleep(0.2)
        yield base, db
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_dashboard_serves_architectures_notes_and_figures(
    dashboard_server: tuple[str, Path],
) -> None:
    base, db = dashboard_server
    url = f"sqlite:///{db}"
    artifacts = db.parent / "d-artifacts"  # what `optuna-enas dashboard` serves by default
    # A real ENAS search (tiny supernet) decorated by the callback after each trial ...
    rnn = RNNCellSpace(n_nodes=3)
    evaluator = SupernetEvaluator(
        rnn, seed=0, supernet_kwargs={"embed_size": 8, "hidden_size": 8}, batch_size=8, bptt=8
    )
    callback = DashboardCallback(rnn, artifacts, figures_every=3)
    study = optuna.create_study(
        storage=url, study_name="rnn", sampler=ENASSampler(rnn, seed=0), direction="minimize"
    )
    study.optimize(evaluator, n_trials=3, callbacks=[callback])
    # ... and a wrapped objective (regular Optuna trial artifacts) on another space.
    micro = MicroSpace(n_nodes=2)
    wrap_cb = DashboardCallback(micro, artifacts, figures_every=None)
    other = optuna.create_study(
        storage=url, study_name="micro", sampler=ENASSampler(micro, seed=0)
    )
    other.optimize(wrap_cb.wrap(_fake_objective(micro)), n_trials=2, callbacks=[wrap_cb])

    _, ctype, body = _get(f"{base}/api/studies")
    assert ctype.startswith("application/json")
    ids = {s["study_name"]: s["study_id"] for s in json.loads(body)["study_summaries"]}
    assert set(ids) == {"placeholder", "rnn", "micro"}
    for name, n_trials in (("rnn", 3), ("micro", 2)):
        detail = json.loads(_get(f"{base}/api/studies/{ids[name]}")[2])
        assert len(detail["trials"]) == n_trials
        for trial in detail["trials"]:
            attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
            assert attrs["architecture"].startswith("0:" if name == "rnn" else "normal:")
            (meta,) = [a for a in trial["artifacts"] if a["mimetype"] == "image/svg+xml"]
            path = f"/artifacts/{ids[name]}/{trial['trial_id']}/{meta['artifact_id']}"
            assert f"![architecture]({path})" in trial["note"]["body"]
            status, ctype, svg = _get(base + path)
            assert status == 200 and ctype == "image/svg+xml"
            assert svg.startswith(b"<svg") and f"Trial {trial['number']}".encode() in svg
        if name == "rnn":
            figures = detail["plotly_graph_objects"]
            assert {f["id"] for f in figures} == {"enas-best-so-far", "enas-controller"}
