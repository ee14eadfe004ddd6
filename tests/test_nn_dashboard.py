"""The dashboard picture of a generic architecture: a Supernet's space drawn as a table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore
from torch import nn

from optuna_enas import ENASSampler
from optuna_enas import objective_over
from optuna_enas.dashboard import DashboardCallback
from optuna_enas.dashboard import architecture_svg
from optuna_enas.dashboard._svg import architecture_markdown
from optuna_enas.dashboard._svg import architecture_rows
from optuna_enas.nn import ElasticLinear
from optuna_enas.nn import InputChoice
from optuna_enas.nn import LayerChoice
from optuna_enas.nn import Repeat
from optuna_enas.nn import Supernet
from optuna_enas.nn import ValueChoice
from optuna_enas.spaces._search_space import Architecture


_SVG = "{http://www.w3.org/2000/svg}"


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        width = ValueChoice("width", [4, 8])
        self.inp = ElasticLinear(3, width)
        self.body = Repeat(
            "depth",
            lambda i: LayerChoice(f"op{i}", {"relu": nn.ReLU(), "tanh": nn.Tanh()}),
            [1, 2],
        )
        self.skip = InputChoice("skip", 2, n_chosen=None)
        self.out = ElasticLinear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        return self.out(self.skip([h, self.body(h)]))


def _supernet() -> Supernet:
    torch.manual_seed(0)
    return Supernet(_Net(), example_input=torch.zeros(2, 3))


def _table(svg: str) -> tuple[list[str], list[str], int]:
    """Texts, bold chosen entries of the choices column, and pill count of a table SVG."""
    root = ET.fromstring(svg)
    assert root.tag == f"{_SVG}svg"
    texts = [t.text or "" for t in root.iter(f"{_SVG}text")]
    bold = [
        s.text or ""
        for s in root.iter(f"{_SVG}tspan")
        if s.get("font-weight") == "bold" and s.text
    ]
    pills = [r for r in root.iter(f"{_SVG}rect") if r.get("rx") == "5"]
    return texts, bold, len(pills)


def test_architecture_svg_of_a_supernet_space_is_one_row_per_label() -> None:
    space = _supernet().space
    assert space.name == "supernet"
    arch = space.sample_uniform(np.random.default_rng(3))
    texts, bold, n_pills = _table(architecture_svg(space, arch, title="Trial 7 <&>"))
    assert "Trial 7 <&>" in texts
    assert {"decision", "kind", "chosen", "choices"} <= set(texts)
    rows = architecture_rows(space, arch)
    assert [r[0] for r in rows] == list(space.names)
    assert n_pills == len(space)  # one pill per label: the chosen candidate
    for name, kind, chosen, _ in rows:
        assert name in texts and kind in texts and chosen in texts
    assert bold == [r[2] for r in rows]  # the chosen one is bold among the choices
    skip_rows = [r for r in rows if r[1] == "skip"]
    assert [r[0] for r in skip_rows] == ["skip/0", "skip/1"]
    assert all(r[2] in ("on", "off") and r[3] == ("off", "on") for r in skip_rows)


def test_architecture_svg_cuts_long_choice_lists_and_many_rows() -> None:
    from optuna_enas import Decision
    from optuna_enas import SearchSpace

    space = SearchSpace(
        [Decision(f"d{i}", tuple(range(200)), kind="other") for i in range(70)], name="big"
    )
    arch = space.from_indices([0] * 70)
    texts, _, n_pills = _table(architecture_svg(space, arch))
    assert n_pills == 60 and "... (10 more)" in texts
    (row,) = [r for r in architecture_rows(space, arch) if r[0] == "d0"]
    assert row[3][-1].startswith("... +") and len(row[3]) < 40
    assert int(row[3][-1][5:]) + len(row[3]) - 1 == 200  # shown + left out = all


def test_architecture_markdown_names_the_choice_per_label() -> None:
    space = _supernet().space
    arch = space.architecture(
        {"width": 8, "depth": 2, "op0": "tanh", "op1": "relu", "skip/0": 1, "skip/1": 0}
    )
    md = architecture_markdown(space, arch).splitlines()
    assert md[0] == "| decision | chosen | choices |"
    assert "| width | **8** | 4 · 8 |" in md
    assert "| op0 | **tanh** | relu · tanh |" in md
    assert "| skip/1 | **off** | off · on |" in md


def test_callback_draws_each_trial_of_a_model_evaluator_study(tmp_path: Path) -> None:
    supernet = _supernet()
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, generator=gen), torch.randint(0, 2, (32,), generator=gen)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]
    objective = objective_over(supernet, batches, batches, metric="accuracy", seed=0)
    (tmp_path / "artifacts").mkdir()
    store = FileSystemArtifactStore(str(tmp_path / "artifacts"))
    callback = DashboardCallback(supernet.space, store, figures_every=None)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'nn.db'}",
        sampler=ENASSampler(supernet.space, seed=0),
        direction=objective.direction,
    )
    study.optimize(objective, n_trials=3, callbacks=[callback])
    attrs = study._storage.get_study_system_attrs(study._study_id)
    for t in study.get_trials():
        assert t.state == optuna.trial.TrialState.COMPLETE
        (key,) = [k for k in attrs if k.startswith(f"dashboard:artifacts:{t._trial_id}:")]
        with store.open_reader(json.loads(attrs[key])["artifact_id"]) as f:
            svg = f.read().decode()
        arch = supernet.space.architecture(t.params)
        _, bold, n_pills = _table(svg)
        assert n_pills == len(supernet.space)
        assert bold == [r[2] for r in architecture_rows(supernet.space, arch)]
        assert f"Trial {t.number} (supernet)" in svg
    notes = [a for k, a in attrs.items() if ":note_str:" in k]
    assert len(notes) == 3 and all("![architecture](/artifacts/" in n for n in notes)
    for t in study.get_trials():  # the note also names the choice per label, as a table
        (note,) = [n for n in notes if f"### Trial {t.number}: supernet" in n]
        assert f"| width | **{t.params['width']}** | 4 · 8 |" in note
    assert isinstance(supernet.space.architecture(study.best_params), Architecture)
