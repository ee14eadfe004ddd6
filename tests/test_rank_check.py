"""Tests of the rank metrics and of rank_check (API and ``optuna-enas rank-check``)."""

from __future__ import annotations

import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from optuna_enas import RNNCellSpace
from optuna_enas import SupernetEvaluator
from optuna_enas.cli import main
from optuna_enas.dashboard._rank_figure import FIGURE_ID
from optuna_enas.data import Corpus
from optuna_enas.data import synthetic_corpus
from optuna_enas.final import RankCheckResult
from optuna_enas.final import kendall_tau
from optuna_enas.final import rank_agreement
from optuna_enas.final import rank_check
from optuna_enas.final import spearman_rho
from optuna_enas.final import top_k_overlap
from optuna_enas.final._rank_check import draw_distinct
from optuna_enas.final._rank_metrics import average_ranks
from optuna_enas.final._rank_metrics import oriented
from optuna_enas.final._rank_metrics import top_fraction_k


optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- metrics -------------------------------------------------------------------------------------
def test_kendall_tau_known_values() -> None:
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # One discordant pair of six: (5 - 1) / 6.
    assert kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    # tau-b with ties: x has one tied pair. concordant 4, discordant 0, 5 untied in x, 6 in y.
    assert kendall_tau([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(5 * 6))
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau([1], [2]))


def test_rank_metrics_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(10):
        a = rng.integers(0, 6, 25).astype(float)  # many ties
        b = a + rng.normal(0, 2, 25).round()
        assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b)[0], abs=1e-12)
        assert spearman_rho(a, b) == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-12)


def test_average_ranks_share_ties() -> None:
    np.testing.assert_array_equal(average_ranks([3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0])


def test_top_k_overlap() -> None:
    a = [0.9, 0.8, 0.1, 0.2, 0.3]
    b = [0.7, 0.1, 0.9, 0.2, 0.3]
    assert top_k_overlap(a, b, 1) == 0.0
    assert top_k_overlap(a, b, 2) == 0.5  # {0, 1} vs {2, 0}
    assert top_k_overlap(a, a, 3) == 1.0
    assert top_fraction_k(200, 0.1) == 20
    assert top_fraction_k(15, 0.1) == 2
    assert top_fraction_k(3, 0.1) == 1
    with pytest.raises(ValueError, match="k"):
        top_k_overlap(a, b, 6)
    with pytest.raises(ValueError, match="fraction"):
        top_fraction_k(10, 0.0)


def test_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        kendall_tau([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        spearman_rho([1, math.nan], [1, 2])
    with pytest.raises(ValueError, match="direction"):
        oriented([1.0], "down")


def test_rank_agreement_orients_perplexity() -> None:
    ppl_shared = [100.0, 120.0, 90.0, 150.0]
    ppl_scratch = [80.0, 95.0, 70.0, 99.0]
    out = rank_agreement(oriented(ppl_shared, "minimize"), oriented(ppl_scratch, "minimize"))
    assert out["kendall_tau"] == pytest.approx(1.0)
    assert out["top_k"] == 1 and out["top_k_overlap"] == 1.0


# -- rank_check ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return synthetic_corpus(n_train_tokens=3000, n_valid_tokens=800, n_test_tokens=800)


def _trained(corpus: Corpus, seed: int = 0, steps: int = 6) -> SupernetEvaluator:
    evaluator = SupernetEvaluator(
        RNNCellSpace(n_nodes=3),
        corpus,
        supernet_kwargs={"hidden_size": 8, "embed_size": 8},
        batch_size=8,
        bptt=8,
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        evaluator.train_steps(evaluator.space.sample_uniform(rng), 1)
    return evaluator


_FAST: dict[str, Any] = {"n_epochs": 1, "n_steps_per_epoch": 3, "seed": 0}


def test_draw_distinct_is_seeded_and_extends() -> None:
    space = RNNCellSpace(n_nodes=3)
    five = draw_distinct(space, 5, 1)
    assert len({space.to_fixed_arc(a) for a in five}) == 5
    assert draw_distinct(space, 8, 1)[:5] == five
    with pytest.raises(ValueError, match="n_archs"):
        draw_distinct(RNNCellSpace(n_nodes=1, activations=["tanh", "relu"]), 3, 0)


def test_rank_check_scores_supernet_without_side_effects_and_resumes(
    corpus: Corpus, tmp_path: Path
) -> None:
    evaluator = _trained(corpus)
    before = {k: v.clone() for k, v in evaluator.supernet.state_dict().items()}
    storage = f"sqlite:///{tmp_path / 'rc.db'}"
    stream = io.StringIO()
    partial = rank_check(
        evaluator, n_archs=5, storage=storage, max_archs=3, progress=stream, **_FAST
    )
    assert len(partial.indices) == 3 and not partial.complete
    assert "3/5 trained" in stream.getvalue()
    for k, v in evaluator.supernet.state_dict().items():
        assert v.equal(before[k]), k  # frozen weights
    svg = tmp_path / "rc.svg"
    done = rank_check(evaluator, n_archs=5, storage=storage, svg_path=svg, **_FAST)
    assert done.complete and done.indices == (0, 1, 2, 3, 4)
    assert done.supernet[:3] == partial.supernet  # the resumed run kept the first three
    study = optuna.load_study(study_name="rank-check", storage=storage)
    assert len(study.trials) == 5  # one trial per architecture, none repeated
    # The supernet score is the evaluator's own, on the whole validation split.
    arch = done.archs[4]
    assert done.supernet[4] == evaluator.evaluate(arch, split="valid", full=True)
    # The same run from scratch in memory gives the same values (seeded by the index).
    again = rank_check(evaluator, n_archs=5, **_FAST)
    assert again.standalone == done.standalone
    direction = evaluator.direction
    expected = kendall_tau(
        oriented(done.supernet, direction), oriented(done.standalone, direction)
    )
    assert done.kendall_tau == pytest.approx(expected)
    assert svg.read_text().startswith("<svg") and "Kendall tau" in svg.read_text()
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert FIGURE_ID in json.dumps(attrs)  # the dashboard figure
    row = done.to_dict()["archs"][0]
    assert set(row) == {"index", "fixed_arc", "supernet", "standalone"}


def test_rank_check_prints_nothing_by_default(
    corpus: Corpus, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    evaluator = _trained(corpus)
    capfd.readouterr()
    result = rank_check(evaluator, n_archs=3, svg_path=tmp_path / "rc.svg", **_FAST)
    assert result.complete
    assert capfd.readouterr() == ("", "")  # neither stdout nor stderr, at the descriptor level
    rank_check(evaluator, n_archs=3, progress=True, **_FAST)
    assert "3/3 trained" in capfd.readouterr().err  # asked for: the progress line on stderr


# DejaVu Sans Bold advance widths in 1/2048 em (its hmtx table), the first font the SVGs name.
_BOLD_CHARS = " ()+,-./0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BOLD_ADVANCES = [713, 936, 936, 1716, 778, 850, 778, 748] + [1425] * 10 + [819]
_BOLD_ADVANCES += [1585, 1561, 1503, 1700, 1399, 1399, 1681, 1714, 762, 762, 1587, 1305, 2038]
_BOLD_ADVANCES += [1714, 1741, 1501, 1741, 1577, 1475, 1397, 1663, 1585, 2259, 1579, 1483, 1485]
_BOLD_ADVANCES += [1382, 1466, 1214, 1466, 1389, 891, 1466, 1458, 702, 702, 1362, 702, 2134]
_BOLD_ADVANCES += [1458, 1407, 1466, 1466, 1010, 1219, 979, 1458, 1335, 1892, 1321, 1335, 1192]
_BOLD_EM = dict(zip(_BOLD_CHARS, (a / 2048 for a in _BOLD_ADVANCES), strict=True))


def _bold_lines(svg: str) -> tuple[float, list[tuple[float, int, str]]]:
    width = float(re.search(r'<svg[^>]* width="([0-9.]+)"', svg).group(1))  # type: ignore[union-attr]
    pattern = r'<text x="([0-9.]+)" y="[0-9.]+" font-size="(\d+)" text-anchor="start" '
    pattern += r'font-weight="bold"[^>]*>([^<]*)</text>'
    lines = [(float(x), int(size), html.unescape(t)) for x, size, t in re.findall(pattern, svg)]
    return width, lines


def test_rank_check_svg_title_fits_its_width() -> None:
    space = RNNCellSpace(n_nodes=4)
    n = 1000
    rng = np.random.default_rng(0)
    shared = rng.normal(100.0, 10.0, n)
    result = RankCheckResult(
        space=space,
        direction="minimize",
        metric="valid ppl",
        indices=tuple(range(n)),
        archs=tuple(draw_distinct(space, n, 0)),
        supernet=tuple(shared.tolist()),
        standalone=tuple((shared + rng.normal(0.0, 30.0, n)).tolist()),
        n_archs=n,
        k=100,
        kendall_tau=-0.123456,
        spearman_rho=-0.234567,
        top_k_overlap=0.25,
    )
    title = f"rank check: {result.summary()}"
    assert len(title) > 100  # the old SVG cut such a title at its right edge
    long = "rank check of study 'ptb-enas-controller-2026' on the frozen supernet, " * 4
    for svg, whole in ((result.svg(), title), (result.svg(title=long), None)):
        width, lines = _bold_lines(svg)
        assert 1 < len(lines) <= 3
        for x, size, text in lines:
            advance = sum(_BOLD_EM.get(c, 1.1) for c in text) * size
            assert x + advance <= width, (text, x + advance, width)
        if whole is not None:
            assert " ".join(t for _, _, t in lines) == whole  # wrapped, nothing cut
        else:
            assert lines[-1][2].endswith("\u2026")


def test_rank_check_refuses_a_different_supernet(corpus: Corpus, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'rc.db'}"
    rank_check(_trained(corpus), n_archs=2, storage=storage, **_FAST)
    with pytest.raises(ValueError, match="supernet"):
        rank_check(_trained(corpus, steps=7), n_archs=2, storage=storage, **_FAST)
    with pytest.raises(ValueError, match="seed"):
        rank_check(_trained(corpus), n_archs=2, storage=storage, n_epochs=1, seed=5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_archs": 1}, "n_archs"),
        ({"n_epochs": 0}, "n_epochs"),
        ({"valid_batches": 0}, "valid_batches"),
        ({"top_fraction": 1.5}, "fraction"),
        ({"seed": -1}, "seed"),
        ({"study_name": ""}, "study_name"),
        ({"progress": "stderr"}, "progress"),
    ],
)
def test_rank_check_rejects_bad_arguments(
    corpus: Corpus, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        rank_check(_trained(corpus, steps=0), **kwargs)
    with pytest.raises(ValueError, match="evaluator"):
        rank_check(object(), n_archs=2)  # type: ignore[arg-type]


def test_cli_rank_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    tiny = ["--n-nodes", "3", "--hidden-size", "8", "--batch-size", "8", "--bptt", "8"]
    assert main(["search", "--storage", db, *tiny, "--trials", "3"]) == 0
    capsys.readouterr()
    svg, out_json = tmp_path / "rc.svg", tmp_path / "rc.json"
    args = ["rank-check", "--storage", db, "--n-archs", "3", "--epochs", "1"]
    args += ["--steps-per-epoch", "2", "--output", str(svg), "--json", str(out_json)]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "3/3 architectures: Kendall tau" in out.out
    assert "rank-check [" in out.err  # the progress line
    assert json.loads(out_json.read_text())["n_done"] == 3
    assert svg.is_file()
    assert main(args) == 0  # rerun: nothing left to train
    assert "3/3 trained" in capsys.readouterr().err
    assert main(["rank-check", "--storage", db, "--n-archs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n-archs" in err
    assert main(["rank-check", "--storage", db, "--n-archs", "3", "--seed", "4"]) == 2
    assert "seed" in capsys.readouterr().err
