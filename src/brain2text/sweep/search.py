"""``brain2text sweep RUN_FILE --optuna N --space SPACE.yaml [--storage URL]``: an Optuna study.

Optuna's TPE sampler proposes each trial's values from the space file
(:mod:`brain2text.sweep.space`); the trial is a child run ``OUT/trial-NNNN/``. After every
evaluation the child reports its validation PER to the trial, and Optuna's median pruner stops
the child (status ``pruned``, its ``last.pt`` kept) when that PER is worse than the median of
the finished trials at the same step. The study minimises each child's best PER.

The study lives in an Optuna RDB storage: ``OUT/study.db`` (SQLite) by default, or any
``--storage`` URL (PostgreSQL, MySQL) so that workers on several machines (a Slurm job array)
join one study: each is this same command. ``N`` counts the trials of the study that finished
or were pruned, whichever worker ran them; each worker stops once there are N (a trial still
running elsewhere may add one or two).

A stop signal interrupts the running child as it interrupts ``train``; its trial is marked
failed and queued again with the same values and folder, so the next worker to take a trial,
here or on another machine, continues the child from its ``last.pt``. A worker that dies
without a signal stops its trial's heartbeat, and Optuna queues that trial again the same way
once the heartbeat is ``HEARTBEAT_GRACE_S`` old.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import optuna
from optuna.samplers import TPESampler
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState, create_trial

from brain2text.config import load_run
from brain2text.errors import ConfigError, TrainingError
from brain2text.reports.sweep import write_sweep_outputs
from brain2text.sweep.children import (
    Child,
    child_status,
    make_child,
    train_child,
    write_best_run_file,
    write_record,
)
from brain2text.sweep.grid import SweepOutcome
from brain2text.sweep.processes import Job, run_jobs
from brain2text.sweep.space import Distribution, describe, load_space, probe_values, suggest
from brain2text.training.loop import INTERRUPTED, PRUNED
from brain2text.training.state import Evaluation

HEARTBEAT_S = 60
HEARTBEAT_GRACE_S = 300
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
STUDY_FILE = "study.db"


@dataclass(frozen=True)
class SearchPlan:
    run_file: Path | str
    overrides: list[str]
    space_file: Path
    space: dict[str, Distribution]
    n_trials: int
    out_dir: Path
    storage_url: str
    study_name: str
    base_name: str
    sampler_seed: int | None  # None: fresh entropy (workers that join must not draw alike)
    prune_startup: int  # trials to finish before the pruner prunes (0: no pruning)


class SearchInterrupted(Exception):
    """A stop signal interrupted the running trial (it is queued again)."""


class RefusedTrial(Exception):
    """The trial's values, from inside the space, make a config training cannot run (the ends
    of every range were checked before the search): the trial fails and the search goes on."""


def _retry_stale_trials(max_retry: int = 3) -> dict[str, Any]:
    """RDBStorage's argument for the callback that queues a dead worker's trial again (its
    class and argument were renamed in Optuna 4.9; the behaviour is the same)."""
    if "heartbeat_stale_trial_callback" in inspect.signature(RDBStorage).parameters:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        return {"heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry)}
    return {"failed_trial_callback": RetryFailedTrialCallback(max_retry)}  # Optuna 4.0-4.8


def masked(url: str) -> str:
    """The URL with its password hidden (it is printed and written to sweep.json)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def open_storage(url: str) -> RDBStorage:
    """The study's storage; a URL that cannot be opened is a one-line error naming it."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        # SQLite: several workers on one file wait for each other's writes, up to a minute
        engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else None
        return RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=HEARTBEAT_S,
            grace_period=HEARTBEAT_GRACE_S,
            **_retry_stale_trials(),
        )
    except Exception as exc:  # sqlalchemy's errors, a missing database driver, a bad URL
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ConfigError(
            f"--storage {masked(url)}: cannot be opened ({type(exc).__name__}: {reason})"
        ) from None


def plan_search(
    run_file: Path | str,
    space_file: Path | str,
    n_trials: int,
    *,
    overrides: list[str],
    out_dir: Path | None,
    storage: str | None,
    study_name: str | None,
    prune_startup: int,
    sampler_seed: int | None = None,
) -> SearchPlan:
    """Everything checked before a trial starts: the space file, every key of it against the
    run file (at both ends of a range and at every choice), N and the storage URL."""
    if n_trials < 1:
        raise ConfigError(f"--optuna {n_trials}: give the number of trials, 1 or more")
    if prune_startup < 0:
        raise ConfigError(f"--prune-startup {prune_startup}: give 0 (no pruning) or more")
    space = load_space(space_file)
    base = load_run(run_file, overrides)
    for key, distribution in space.items():
        for value in probe_values(distribution):
            make_child(run_file, "probe", {key: value}, overrides, base.name)
    out_dir = Path(out_dir) if out_dir is not None else Path("runs") / f"{base.name}-optuna"
    url = storage or default_storage(out_dir)
    return SearchPlan(
        run_file,
        list(overrides),
        Path(space_file),
        space,
        n_trials,
        out_dir,
        url,
        study_name or base.name,
        base.name,
        sampler_seed,
        prune_startup,
    )


def default_storage(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / STUDY_FILE).resolve()}"


def open_study(plan: SearchPlan, sampler_seed: int | None = None) -> optuna.Study:
    """Create the study, or join it when it exists (another worker made it)."""
    if plan.storage_url == default_storage(plan.out_dir):
        plan.out_dir.mkdir(parents=True, exist_ok=True)  # the default file's folder
    storage = open_storage(plan.storage_url)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=plan.prune_startup)
        if plan.prune_startup
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        storage=storage,
        study_name=plan.study_name,
        direction="minimize",
        sampler=TPESampler(seed=sampler_seed),
        pruner=pruner,
        load_if_exists=True,
    )


def run_search(plan: SearchPlan, *, quiet: bool = False) -> SweepOutcome:
    """Run trials until the study holds ``plan.n_trials`` finished or pruned ones."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(plan, plan.sampler_seed)
    write_record(
        plan.out_dir,
        {
            "kind": "optuna",
            "run_file": str(plan.run_file),
            "overrides": plan.overrides,
            "space": describe(plan.space),
            "varied": list(plan.space),
            "n_trials": plan.n_trials,
            "storage": masked(plan.storage_url),
            "study": plan.study_name,
            "prune_startup": plan.prune_startup,
        },
        same=("run_file", "overrides", "space", "study"),
    )
    counted = len(study.get_trials(deepcopy=False, states=COUNTED))
    print(
        f"study {plan.study_name} in {masked(plan.storage_url)}: {counted} of "
        f"{plan.n_trials} trials done",
        flush=True,
    )
    interrupted = False
    failed: dict[str, str] = {}
    if counted < plan.n_trials:
        try:
            study.optimize(
                _Objective(plan, study, quiet, failed),
                n_trials=plan.n_trials - counted,
                callbacks=[MaxTrialsCallback(plan.n_trials, states=COUNTED)],
                catch=(TrainingError, RefusedTrial),
            )
        except SearchInterrupted as exc:
            print(f"search interrupted in {exc}; run the same command again to go on")
            interrupted = True
    write_sweep_outputs(plan.out_dir)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    scored = [(t.value, t) for t in complete if t.value is not None]
    if scored and not interrupted:
        value, best = min(scored, key=lambda vt: vt[0])
        config = load_run(plan.run_file, plan.overrides)
        child = Child(best.user_attrs["folder"], best.params, config)
        write_best_run_file(
            plan.out_dir, plan.run_file, plan.base_name, plan.overrides, child, value
        )
    return SweepOutcome(plan.out_dir, interrupted, failed)


def run_search_workers(plan: SearchPlan, workers: int) -> SweepOutcome:
    """``--workers K``: K worker processes of this same search on this machine, joining one
    study (created here first, so that they do not race to create it)."""
    open_study(plan)
    arguments = [
        "sweep",
        str(plan.run_file),
        *plan.overrides,
        "--optuna",
        str(plan.n_trials),
        "--space",
        str(plan.space_file),
        "--storage",
        plan.storage_url,
        "--study",
        plan.study_name,
        "--out",
        str(plan.out_dir),
        "--prune-startup",
        str(plan.prune_startup),
        "--quiet",
    ]
    seeds = [None if plan.sampler_seed is None else plan.sampler_seed + k for k in range(workers)]
    jobs = [
        Job(f"worker-{k + 1}", arguments + ([] if seed is None else ["--sampler-seed", str(seed)]))
        for k, seed in enumerate(seeds)
    ]
    result = run_jobs(
        jobs,
        workers,
        plan.out_dir / "logs",
        on_end=lambda job, code: print(f"{job.name} ended (exit {code})", flush=True),
    )
    write_sweep_outputs(plan.out_dir)
    if result.interrupted:
        print("search interrupted; run the same command again to go on")
    return SweepOutcome(plan.out_dir, result.interrupted, result.failed)


class _Objective:
    """One trial: the child's values, its run (resumed when the trial continues an interrupted
    one), its evaluations fed to the pruner, its best PER."""

    def __init__(
        self, plan: SearchPlan, study: optuna.Study, quiet: bool, failed: dict[str, str]
    ) -> None:
        self.plan, self.study, self.quiet, self.failed = plan, study, quiet, failed

    def __call__(self, trial: optuna.Trial) -> float:
        plan = self.plan
        name = trial.user_attrs.get("folder") or f"trial-{trial.number:04d}"
        trial.set_user_attr("folder", name)
        values: dict[str, Any] = {k: suggest(trial, k, d) for k, d in plan.space.items()}
        try:
            child = make_child(plan.run_file, name, values, plan.overrides, plan.base_name)
        except ConfigError as exc:
            print(f"trial {trial.number} ({name}) refused: {exc}", flush=True)
            self.failed[name] = str(exc)
            raise RefusedTrial(name) from None
        folder = plan.out_dir / name
        shown = " ".join(f"{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in values.items())
        again = " (continued)" if child_status(folder) is not None else ""
        print(f"trial {trial.number} -> {folder}{again}: {shown}", flush=True)

        def report(evaluation: Evaluation) -> bool:
            trial.report(evaluation.score.per, evaluation.step)
            return trial.should_prune()

        try:
            outcome = train_child(child, folder, quiet=self.quiet, on_evaluation=report)
        except TrainingError as exc:
            print(f"trial {trial.number} ({name}) failed: {exc}", flush=True)
            self.failed[name] = str(exc)
            raise
        finally:
            write_sweep_outputs(plan.out_dir)
        if outcome.status == INTERRUPTED:
            self._queue_again(trial, name)
            raise SearchInterrupted(name)
        if outcome.status == PRUNED:
            print(
                f"trial {trial.number} ({name}) pruned after step {outcome.last_step}: "
                f"best PER {outcome.best.per:.4f}",
                flush=True,
            )
            raise optuna.TrialPruned()
        print(
            f"trial {trial.number} ({name}) {outcome.status}: best PER "
            f"{outcome.best.per:.4f} at step {outcome.best.step}",
            flush=True,
        )
        return outcome.best.per if math.isfinite(outcome.best.per) else 1.0

    def _queue_again(self, trial: optuna.Trial, name: str) -> None:
        """A waiting trial with the same values and folder: whichever worker takes it next
        resumes the child."""
        frozen = self.study.get_trials(deepcopy=False)[trial.number]
        self.study.add_trial(
            create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs={"folder": name, "continues": trial.number},
                intermediate_values=dict(frozen.intermediate_values),
            )
        )


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
