"""Per-trial dashboard content: architecture drawings as artifacts and trial notes.

Per trial, :class:`DashboardCallback` draws the architecture as an SVG (boxes and arrows drawn
by hand: no graphviz), stores it in an Optuna artifact store and writes a trial note (Markdown)
that shows it, so the trial page of optuna-dashboard displays the cell next to the trial's
``architecture`` user attribute (set by :func:`~optuna_enas.suggest_architecture`). The study
figures (reward, baseline, entropy, best so far) are in :mod:`optuna_enas.dashboard._figures`.

optuna-dashboard is imported inside the functions that need it.

Example:

    .. code-block:: python

        import optuna
        from optuna.artifacts import FileSystemArtifactStore
        from optuna_enas import ENASSampler, RNNCellSpace
        from optuna_enas import SupernetEvaluator
        from optuna_enas.dashboard import DashboardCallback

        space = RNNCellSpace(n_nodes=4)
        evaluator = SupernetEvaluator(space, seed=0)
        callback = DashboardCallback(space, FileSystemArtifactStore("artifacts"))
        study = optuna.create_study(
            storage="sqlite:///enas.db",
            sampler=ENASSampler(space, seed=0),
            direction=evaluator.direction,
        )
        study.optimize(callback.wrap(evaluator), n_trials=20, callbacks=[callback])
        # optuna-dashboard sqlite:///enas.db --artifact-dir artifacts
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import types
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import BinaryIO
from typing import Protocol

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_enas.dashboard._svg import architecture_markdown
from optuna_enas.dashboard._svg import architecture_svg
from optuna_enas.dashboard._svg import drawn_as_table
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace


if TYPE_CHECKING:
    pass


_logger = logging.getLogger(__name__)

SVG_ATTR = "enas:svg"
"""Trial system attr set by :meth:`DashboardCallback.wrap`: the id of the SVG artifact."""
# optuna-dashboard lists a study system attr with this prefix as an artifact of the trial and
# serves it at /artifacts/{study_id}/{trial_id}/{artifact_id} (artifact/_backend.py, 0.13+).
_DASHBOARD_TRIAL_ARTIFACT = "dashboard:artifacts:{trial_id}:{artifact_id}"
_SVG_MIME = "image/svg+xml"


class ArtifactStoreLike(Protocol):
    """What this module needs of an Optuna artifact store (``FileSystemArtifactStore``...)."""

    def open_reader(self, artifact_id: str) -> BinaryIO: ...

    def write(self, artifact_id: str, content_body: BinaryIO) -> None: ...

    def remove(self, artifact_id: str) -> None: ...


def architecture_note(
    space: SearchSpace, arch: Architecture, *, image_url: str | None, heading: str
) -> str:
    """The Markdown of a trial note: a heading, the drawing, the description and ``fixed_arc``."""
    lines = [f"### {heading}", ""]
    if image_url is not None:
        lines += [f"![architecture]({image_url})", ""]
    if drawn_as_table(space):  # a Supernet's or custom space: the choice per label, as text
        lines += [architecture_markdown(space, arch), ""]
    lines += [f"`{space.describe(arch)}`", "", f"fixed_arc: `{space.to_fixed_arc(arch)}`", ""]
    return "\n".join(lines)


# -- per-trial dashboard content ---------------------------------------------------------------
def _as_store(artifact_store: ArtifactStoreLike | str | os.PathLike[str]) -> ArtifactStoreLike:
    if isinstance(artifact_store, (str, os.PathLike)):
        from optuna.artifacts import FileSystemArtifactStore

        path = Path(artifact_store).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return FileSystemArtifactStore(str(path))
    for method in ("write", "open_reader"):
        if not callable(getattr(artifact_store, method, None)):
            raise ValueError(
                "artifact_store must be an Optuna artifact store or a directory path, but got "
                f"{artifact_store!r}."
            )
    return artifact_store


def _architecture_of(space: SearchSpace, params: Mapping[str, Any]) -> Architecture | None:
    if not all(name in params for name in space.names):
        return None  # the trial failed before suggesting the whole architecture
    try:
        return space.architecture(params)
    except ValueError:
        return None


def _metric_name(space: SearchSpace, metric: str) -> str | None:
    """The study's metric name: ``metric`` if given, else the ENAS space's ("valid ppl")."""
    if metric != "value":
        return metric
    from optuna_enas.spaces._kinds import kind_of

    try:
        return kind_of(space).metric_label
    except ValueError:  # a custom space: its metric is unknown
        return None


def _heading(space: SearchSpace, number: int, value: Any) -> str:
    head = f"Trial {number}: {space.name} architecture"
    return f"{head} (value {value:.6g})" if isinstance(value, (int, float)) else head


class DashboardCallback:
    """Put each trial's architecture drawing and a note on the optuna-dashboard trial page.

    Use it as an Optuna callback, ``study.optimize(objective, callbacks=[callback])``: for each
    finished trial it writes the SVG to ``artifact_store``, registers it as an artifact of the
    trial, and saves a trial note (:func:`optuna_dashboard.save_note`) that embeds it from
    ``/artifacts/{study_id}/{trial_id}/{artifact_id}``. Every ``figures_every`` trials it also
    refreshes the study figures (:func:`save_study_figures`, needs plotly).

    Optuna refuses system attrs on finished trials, so a callback cannot call
    :func:`optuna.artifacts.upload_artifact` for the trial. It records the artifact where
    optuna-dashboard also looks for trial artifacts (the study system attr
    ``dashboard:artifacts:{trial_id}:{artifact_id}``); the dashboard lists, previews and
    serves it, but :func:`optuna.artifacts.get_all_artifact_meta` does not see it. To get a
    regular Optuna trial artifact, also wrap the objective: ``callback.wrap(objective)`` uploads
    the drawing with :func:`optuna.artifacts.upload_artifact` while the trial still runs (the
    callback then only writes that trial's note).

    Errors are logged as warnings and never stop the study.

    Args:
        space: The search space the objective suggests.
        artifact_store: An Optuna artifact store (``FileSystemArtifactStore(dir)``...) or a
            directory for one. Start the dashboard with the same store
            (``optuna-dashboard URL --artifact-dir DIR``).
        write_note: Save the trial note (overwrites a note the objective wrote).
        figures_every: Refresh the study figures after every this many trials; ``None`` never.
        metric: The name of the objective in the figures (``"ppl"``, ``"accuracy"``...);
            also set as the study's metric name (the dashboard's axis label) when the study has
            none. Default: the ENAS space's (``"valid ppl"``, ``"valid accuracy"``).
    """

    def __init__(
        self,
        space: SearchSpace,
        artifact_store: ArtifactStoreLike | str | os.PathLike[str],
        *,
        write_note: bool = True,
        figures_every: int | None = 10,
        metric: str = "value",
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a SearchSpace, but got {space!r}.")
        if figures_every is not None and (
            isinstance(figures_every, bool)
            or not isinstance(figures_every, int)
            or figures_every < 1
        ):
            raise ValueError(
                f"figures_every must be a positive int or None, got {figures_every!r}."
            )
        self._space = space
        self._store = _as_store(artifact_store)
        self._write_note = write_note
        self._figures_every = figures_every
        self._metric = metric
        self._metric_name = _metric_name(space, metric)
        self._n_seen = 0
        self._warned_figures = False

    @property
    def artifact_store(self) -> ArtifactStoreLike:
        return self._store

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        try:
            if self._metric_name is not None and study.metric_names is None:
                from optuna_enas.dashboard._figures import set_metric_name

                set_metric_name(study, self._metric_name)  # axes: "valid ppl", not "Objective 0"
            if SVG_ATTR not in trial.system_attrs:
                self._decorate_finished(study, trial)
            elif self._write_note:
                self._note_for_wrapped(study, trial)
        except Exception:
            _logger.warning(
                f"Could not draw trial {trial.number} for the dashboard.", exc_info=True
            )
        self._n_seen += 1
        if self._figures_every is not None and self._n_seen % self._figures_every == 0:
            self.save_figures(study)

    def save_figures(self, study: optuna.Study) -> None:
        """Refresh the study figures now (warns once and continues without plotly)."""
        try:
            from optuna_enas.dashboard._figures import save_study_figures

            save_study_figures(study, metric=self._metric)
        except ImportError as e:
            if not self._warned_figures:
                _logger.warning(f"Study figures skipped: {e}")
                self._warned_figures = True
        except Exception:
            _logger.warning("Could not save the study figures.", exc_info=True)

    def wrap(self, objective: Callable[[optuna.Trial], Any]) -> Callable[[optuna.Trial], Any]:
        """``objective`` that uploads the drawing as an Optuna trial artifact before it ends.

        The upload runs after ``objective`` returns or raises (pruned and failed trials are
        drawn too), while the trial is still running, with
        :func:`optuna.artifacts.upload_artifact`. The trial note that shows it is written by
        the callback itself (``callbacks=[callback]``) once the trial has finished, under the
        trial's id in the storage.
        """

        def wrapped(trial: optuna.Trial) -> Any:
            value = None
            try:
                value = objective(trial)
                return value
            finally:
                try:
                    self._decorate_running(trial, value)
                except Exception:
                    _logger.warning(
                        f"Could not draw trial {trial.number} for the dashboard.", exc_info=True
                    )

        return wrapped

    def _svg_file(self, directory: str, number: int, arch: Architecture) -> str:
        title = f"Trial {number} ({self._space.name})"
        path = os.path.join(directory, f"trial-{number}-architecture.svg")
        with open(path, "w", encoding="utf-8") as f:
            f.write(architecture_svg(self._space, arch, title=title))
        return path

    def _decorate_running(self, trial: optuna.Trial, value: Any) -> None:
        from optuna.artifacts import upload_artifact

        arch = _architecture_of(self._space, trial.params)
        if arch is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            artifact_id = upload_artifact(
                artifact_store=self._store,
                file_path=self._svg_file(tmp, trial.number, arch),
                study_or_trial=trial,
                mimetype=_SVG_MIME,
            )
        trial.storage.set_trial_system_attr(trial._trial_id, SVG_ATTR, artifact_id)
        if "architecture" not in trial.user_attrs:
            trial.set_user_attr("architecture", self._space.describe(arch))
        # The note is written by __call__ once the trial is finished: a running trial's id
        # may be temporary (BatchedStorage writes the trial, and gives it its id, at its end),
        # and the note is keyed by the id.

    def _note_for_wrapped(self, study: optuna.Study, trial: FrozenTrial) -> None:
        arch = _architecture_of(self._space, trial.params)
        if arch is None:
            return
        url = f"/artifacts/{study._study_id}/{trial._trial_id}/{trial.system_attrs[SVG_ATTR]}"
        value = trial.value if trial.state == TrialState.COMPLETE else None
        heading = _heading(self._space, trial.number, value)
        note = architecture_note(self._space, arch, image_url=url, heading=heading)
        _save_trial_note(study, trial._trial_id, note)

    def _decorate_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        arch = _architecture_of(self._space, trial.params)
        if arch is None:
            return
        artifact_id = str(uuid.uuid4())
        with tempfile.TemporaryDirectory() as tmp:
            path = self._svg_file(tmp, trial.number, arch)
            with open(path, "rb") as f:
                self._store.write(artifact_id, f)
        meta = {
            "artifact_id": artifact_id,
            "filename": os.path.basename(path),
            "mimetype": _SVG_MIME,
            "encoding": None,
        }
        key = _DASHBOARD_TRIAL_ARTIFACT.format(trial_id=trial._trial_id, artifact_id=artifact_id)
        study._storage.set_study_system_attr(study._study_id, key, json.dumps(meta))
        if self._write_note:
            url = f"/artifacts/{study._study_id}/{trial._trial_id}/{artifact_id}"
            value = trial.value if trial.state == TrialState.COMPLETE else None
            heading = _heading(self._space, trial.number, value)
            note = architecture_note(self._space, arch, image_url=url, heading=heading)
            _save_trial_note(study, trial._trial_id, note)


def _save_trial_note(study: optuna.Study, trial_id: int, body: str) -> None:
    from optuna_dashboard import save_note

    # save_note reads .storage, .study and ._trial_id of a trial; notes live in study system
    # attrs, so this also works for finished trials (which an optuna.Trial cannot wrap).
    handle = types.SimpleNamespace(storage=study._storage, study=study, _trial_id=trial_id)
    save_note(handle, body)
