"""``optuna-enas compare``: samplers over several seeds, with tables and plots."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from optuna_enas.cli._errors import PROG
from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._oneshot import run_oneshot
from optuna_enas.cli._oneshot import weight_step_budget
from optuna_enas.cli._options import ONESHOT_METHODS
from optuna_enas.cli._options import _check_device
from optuna_enas.cli._options import _evaluator_config
from optuna_enas.cli._options import _load_data
from optuna_enas.cli._options import _metric
from optuna_enas.cli._options import check_seed_arg
from optuna_enas.cli._options import check_trials
from optuna_enas.cli._options import training_from_config
from optuna_enas.cli._search import _dashboard_hint
from optuna_enas.cli._search import _run_search
from optuna_enas.cli._storage import WALL_ATTR
from optuna_enas.cli._storage import _best_trial
from optuna_enas.cli._storage import _file_name
from optuna_enas.cli._storage import _is_search_trial
from optuna_enas.cli._storage import check_study_name
from optuna_enas.cli._storage import check_writable
from optuna_enas.cli._storage import default_artifact_dir
from optuna_enas.spaces._kinds import kind_of


if TYPE_CHECKING:
    import optuna

    from optuna_enas.spaces._search_space import Architecture
    from optuna_enas.spaces._search_space import SearchSpace


_LABELS = {
    "random": "random (weight sharing)",
    "tpe": "tpe (weight sharing)",
    "darts": "darts (one-shot)",
    "dsonas": "dsonas (one-shot)",
}


def _cmd_compare(args: argparse.Namespace) -> int:
    from optuna_enas.dashboard import best_so_far

    check_trials("--trials", args.trials, 2)
    if len(set(args.seeds)) != len(args.seeds) or any(s < 0 for s in args.seeds):
        raise UsageError(f"--seeds must be distinct non-negative integers, but got {args.seeds}.")
    for s in args.seeds:
        check_seed_arg("--seeds", s)
    samplers = list(dict.fromkeys(args.samplers))
    prefix = args.study_prefix or f"compare-{args.space}"
    for sampler_name in samplers:
        check_study_name("--study-prefix", f"{prefix}-{sampler_name}-seed{max(args.seeds)}")
    out_dir = Path(args.output_dir or f"{_file_name(prefix)}").expanduser()
    check_writable("--output-dir", out_dir, directory=True)
    rows: list[dict[str, Any]] = []
    studies: list[optuna.Study] = []
    metric = _metric(args.space)
    direction = kind_of(args.space).direction
    for sampler_name in samplers:
        for seed in args.seeds:
            name = f"{prefix}-{sampler_name}-seed{seed}"
            final: Architecture | None
            if sampler_name in ONESHOT_METHODS:
                one = run_oneshot(
                    args,
                    method=sampler_name,
                    seed=seed,
                    study_name=name,
                    n_trials=args.trials,
                    progress_label=f"{sampler_name} seed {seed}",
                    quiet=True,
                )
                study, space, final, rescore = one.study, one.space, one.final, one.rescore
                interrupted, exit_code, seconds = one.interrupted, one.exit_code, one.seconds
            else:
                run = _run_search(
                    args,
                    sampler_name=sampler_name,
                    seed=seed,
                    study_name=name,
                    n_trials=args.trials,
                    progress_label=f"{sampler_name} seed {seed}",
                    quiet=True,
                )
                study, space = run.study, run.space
                interrupted, exit_code, seconds = run.interrupted, run.exit_code, run.seconds
                best = _best_trial(study, derived=False)
                final = None if best is None else space.architecture(best.params)
                rescore = _evaluator_rescorer(run.evaluator)
            if interrupted:
                print(f"{PROG}: interrupted; rerun the same command to continue.", file=sys.stderr)
                return exit_code
            trials = sorted(
                (t for t in study.get_trials(deepcopy=False) if _is_search_trial(t)),
                key=lambda t: t.number,
            )
            values = [float(t.value) for t in trials if t.value is not None]
            rescored = math.nan if final is None else rescore(final)
            retrained = math.nan
            if final is not None and args.retrain_epochs > 0:
                retrained = _retrain_value(args, space, final, seed)
            wall = float(study.user_attrs.get(WALL_ATTR, seconds))
            rows.append(
                {
                    "sampler": sampler_name,
                    "seed": seed,
                    "study": name,
                    "n_trials": len(values),
                    "best": best_so_far(values, direction)[-1] if values else math.nan,
                    "final": None if final is None else space.describe(final),
                    "rescored": rescored,
                    "retrained": retrained,
                    "wall_seconds": wall,
                    "curve": best_so_far(values, direction)[: args.trials],
                }
            )
            studies.append(study)
            again = "" if math.isnan(retrained) else f", retrained {retrained:.6g}"
            print(
                f"[compare] {name}: best {metric} {rows[-1]['best']:.6g}, re-scored "
                f"{rescored:.6g}{again}, {wall:.1f} s",
                file=sys.stderr,
            )
    table = _comparison_table(rows, samplers, metric, direction, args)
    paths = _write_comparison(rows, samplers, table, out_dir, metric, args, studies)
    print(table)
    for p in paths:
        print(f"wrote {p}")
    _dashboard_hint(args)
    return 0


def _evaluator_rescorer(evaluator: Any) -> Callable[[Architecture], float]:
    def rescore(arch: Architecture) -> float:
        return float(evaluator.evaluate(arch, split="valid", full=True))

    return rescore


def _retrain_value(
    args: argparse.Namespace, space: SearchSpace, arch: Architecture, seed: int
) -> float:
    """Validation metric of ``arch`` trained from scratch (the same protocol for every run)."""
    from optuna_enas.final import retrain

    check_trials("--retrain-epochs", args.retrain_epochs, 0)
    training, _ = training_from_config(
        _evaluator_config(args, space.name), _check_device(args.device)
    )
    result = retrain(
        arch,
        space,
        _load_data(space.name, args.data),
        n_epochs=args.retrain_epochs,
        training=training,
        seed=seed,
    )
    return float(result.valid_value)


def _mean_std(values: Sequence[float]) -> str:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return "n/a"
    mean = statistics.fmean(vals)
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{mean:.4g} ± {std:.2g}"


def _comparison_table(
    rows: list[dict[str, Any]],
    samplers: list[str],
    metric: str,
    direction: str,
    args: argparse.Namespace,
) -> str:
    better = "lower" if direction == "minimize" else "higher"
    budget = weight_step_budget(args.trials, args.train_steps)
    retrain = args.retrain_epochs > 0
    lines = [
        f"Space `{args.space}`, {args.trials} trials per run ({budget} shared-weight steps; "
        f"one-shot methods get the same steps), seeds {args.seeds}, same supernet size, data "
        f"and batch size for every run; {metric}, {better} is better.",
        "",
        f"| method | runs | best {metric} during search (mean ± std) "
        f"| final architecture re-scored on the full validation set "
        + (f"| final architecture retrained ({args.retrain_epochs} epochs) " if retrain else "")
        + "| wall s/run |",
        "|---|---|---|---|" + ("---|" if retrain else "") + "---|",
    ]
    for name in samplers:
        mine = [r for r in rows if r["sampler"] == name]
        label = _LABELS.get(name, name)
        wall = statistics.fmean(r["wall_seconds"] for r in mine)
        again = f" {_mean_std([r['retrained'] for r in mine])} |" if retrain else ""
        lines.append(
            f"| {label} | {len(mine)} | {_mean_std([r['best'] for r in mine])} "
            f"| {_mean_std([r['rescored'] for r in mine])} |{again} {wall:.1f} |"
        )
    lines += [
        "",
        "Sampler values during the search are single-minibatch scores with the shared weights "
        "at that time; one-shot methods record one trial per epoch (its derived architecture "
        "scored inside the relaxed supernet projected onto it, with the search's weights). "
        "The final architecture is a sampler run's best "
        "trial and a one-shot run's last derived one; it is re-scored with its run's final "
        "shared weights on the whole validation split"
        + (", then trained from scratch with one protocol for all." if retrain else "."),
    ]
    return "\n".join(lines) + "\n"


def _write_comparison(
    rows: list[dict[str, Any]],
    samplers: list[str],
    table: str,
    out_dir: Path,
    metric: str,
    args: argparse.Namespace,
    studies: list[optuna.Study],
) -> list[Path]:
    from optuna_enas.dashboard import comparison_svg

    out_dir.mkdir(parents=True, exist_ok=True)
    curves = {
        name: [r["curve"] for r in rows if r["sampler"] == name and r["curve"]]
        for name in samplers
    }
    curves = {k: v for k, v in curves.items() if v}
    title = f"Best {metric} so far ({args.space}, {len(args.seeds)} seeds)"
    paths = [out_dir / "results.md", out_dir / "results.json"]
    paths[0].write_text(table, encoding="utf-8")
    paths[1].write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    if not curves:
        return paths
    svg_path = out_dir / "best_so_far.svg"
    svg_path.write_text(comparison_svg(curves, metric=metric, title=title), encoding="utf-8")
    paths.append(svg_path)
    figure = None
    try:
        from optuna_enas.dashboard import plot_comparison

        figure = plot_comparison(curves, metric=metric, title=title)
        html_path = out_dir / "best_so_far.html"
        # plotly.min.js is written once next to the page, so it also opens offline.
        figure.write_html(str(html_path), include_plotlyjs="directory")
        paths.append(html_path)
        try:
            png_path = out_dir / "best_so_far.png"
            figure.write_image(str(png_path))  # needs kaleido
            paths.append(png_path)
        except Exception:  # kaleido missing or broken: the SVG and HTML are enough.
            pass
    except ImportError:
        pass
    _save_comparison_to_studies(studies, figure, table, svg_path, args)
    return paths


def _save_comparison_to_studies(
    studies: list[optuna.Study],
    figure: Any,
    table: str,
    svg_path: Path,
    args: argparse.Namespace,
) -> None:
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.artifacts import upload_artifact
    from optuna_dashboard import save_note
    from optuna_dashboard import save_plotly_graph_object

    artifact_dir = Path(args.artifact_dir or default_artifact_dir(args.storage))
    artifact_dir.mkdir(parents=True, exist_ok=True)
    store = FileSystemArtifactStore(str(artifact_dir))
    for study in studies:
        if figure is not None:
            save_plotly_graph_object(study, figure, graph_object_id="enas-compare")
        artifact_id = upload_artifact(
            artifact_store=store,
            file_path=str(svg_path),
            study_or_trial=study,
            mimetype="image/svg+xml",
        )
        url = f"/artifacts/{study._study_id}/{artifact_id}"
        save_note(study, f"## Sampler comparison\n\n![best so far]({url})\n\n{table}")
