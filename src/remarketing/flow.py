"""Each pipeline's steps, declared once. From these tables come the KFP components and their display names
(``components``), the pipelines' wiring (``pipelines``), the run record's step names (``components.runner``
marks each step under its name) and the step list the API gives the app. A new step, or a new model family
(``remarketing.families``), is one change here.

A step names its core function (``module:function``, imported only by the task that runs it), the hand-offs
it reads and writes (by name; a per-family step writes one per family, and a later step reads them all as
``{family: hand-off}``), the run parameters it takes, the ports the adapter gives it, the steps it must wait
for beyond its inputs, and the settings fields it reads (checked when it runs: see
:class:`remarketing.step.StepSettings`).

Kept free of heavy imports: the API and the app read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from remarketing import families

TABLE, CHUNKS, MODEL, DOCUMENT, FOLDER = "table", "chunks", "model", "document", "folder"


@dataclass(frozen=True)
class Handoff:
    kind: str  # table: a DataFrame as parquet; chunks: a folder of parquet chunks; model: a bundle folder;
    # document: a dataclass (or dict) as JSON; folder: files
    type: str = ""  # a document's class, ``module:Class`` (with from_dict/as_dict, or a plain dataclass)
    per_family: bool = False


@dataclass(frozen=True)
class Step:
    name: str
    function: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    params: tuple[str, ...] = ()  # run parameters beyond settings, run_id and dataset (e.g. source_uri)
    ports: tuple[str, ...] = ()  # registry | tracker | deployer
    after: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    per_family: bool = False
    # Runs once per shard (``settings.scoring_shards`` of them, in parallel: dsl.ParallelFor), each on its
    # share of its chunks input; a later step reads each chunks output of all shards merged in order.
    sharded: bool = False
    # Runs in the task of the step before it, right after it: one task start-up fewer (about 1 s locally,
    # a pod in the cloud) where the split buys nothing else. The record still marks it under its own name;
    # the orchestrator shows the task as "<first> + <second>", its metrics output shared by both steps.
    joins_previous: bool = False

    def names(self) -> list[str]:
        """The record's names for this step (and the orchestrator's, for a task of one step): one per
        family for a family step."""
        return [f"{self.name}-{f}" for f in families.NAMES] if self.per_family else [self.name]


@dataclass(frozen=True)
class Pipeline:
    kind: str  # the run kind: training | scoring
    name: str
    description: str
    handoffs: dict[str, Handoff]
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"the {self.kind} pipeline has no step {name!r}")

    def tasks(self) -> list[tuple[Step, ...]]:
        """The steps grouped into the orchestrator's tasks, in order: a step that ``joins_previous`` runs
        in the task of the step before it."""
        grouped: list[tuple[Step, ...]] = []
        for step in self.steps:
            if step.joins_previous:
                previous = grouped[-1] if grouped else ()
                if (
                    not previous
                    or step.per_family
                    or step.sharded
                    or any(s.per_family or s.sharded for s in previous)
                ):
                    raise ValueError(
                        f"{step.name} cannot join the task before it (none, per family or sharded)"
                    )
                if set(step.outputs) & {o for s in previous for o in s.outputs}:
                    raise ValueError(f"{step.name} writes a hand-off the task before it writes too")
                grouped[-1] = (*previous, step)
            else:
                grouped.append((step,))
        return grouped

    def task_of(self, name: str) -> tuple[Step, ...]:
        return next(task for task in self.tasks() if any(s.name == name for s in task))

    @staticmethod
    def task_params(task: tuple[Step, ...]) -> list[str]:
        """The run parameters a task's steps take, each once."""
        return list(dict.fromkeys(p for step in task for p in step.params))

    @staticmethod
    def task_inputs(task: tuple[Step, ...]) -> list[str]:
        """The hand-offs a task reads from earlier tasks, each once (a step that reads what a step before
        it in the same task wrote reads it at that output's path)."""
        written: set[str] = set()
        inputs: list[str] = []
        for step in task:
            inputs += [name for name in step.inputs if name not in written and name not in inputs]
            written |= set(step.outputs)
        return inputs

    def step_names(self) -> list[str]:
        """Every step as the run record and the app name it, in order (a sharded step is one name: its
        shards mark it together)."""
        return [name for step in self.steps for name in step.names()]

    @property
    def sharded(self) -> bool:
        """Whether the pipeline takes the ``shards`` parameter (the list a sharded step fans out over)."""
        return any(step.sharded for step in self.steps)

    def collected(self, name: str) -> bool:
        """Whether hand-off ``name`` is written by the shards of a sharded step (read as all of them)."""
        return any(step.sharded and name in step.outputs for step in self.steps)


TRAINING = Pipeline(
    kind="training",
    name="remarketing-training",
    description="Train, gate, explain and register a campaign model.",
    handoffs={
        "rows": Handoff(TABLE),
        "plan": Handoff(DOCUMENT, "remarketing.backtest:Plan"),
        "candidate": Handoff(MODEL, per_family=True),
        "chosen": Handoff(MODEL),
        "report": Handoff(DOCUMENT, "remarketing.gate:Evaluation"),
        "shap": Handoff(FOLDER),
    },
    steps=(
        Step("validate", "remarketing.training:validate", params=("source_uri",), outputs=("rows",)),
        Step(
            "split",
            "remarketing.training:split",
            inputs=("rows",),
            outputs=("plan",),
            settings=("backtest_periods", "backtest_period_share"),
        ),
        Step(
            "train",
            "remarketing.training:train",
            inputs=("rows", "plan"),
            outputs=("candidate",),
            per_family=True,
            settings=("seed", "shap_background_rows", "budget", "budget_share", "min_category_rows"),
        ),
        Step(
            "evaluate",
            "remarketing.training:evaluate",
            inputs=("candidate",),
            outputs=("chosen", "report"),
            ports=("registry",),
            settings=("selection_metric", "floor_roc_auc", "floor_lift_at_10pct", "promotion_margin"),
        ),
        Step(
            "explain",
            "remarketing.training:explain",
            inputs=("chosen", "rows", "plan"),
            outputs=("shap",),
            settings=("seed",),
        ),
        Step(
            "register",
            "remarketing.training:register",
            inputs=("chosen", "report", "shap"),
            ports=("registry", "tracker"),
            settings=("backtest_periods", "backtest_period_share"),
        ),
    ),
)

SCORING = Pipeline(
    kind="scoring",
    name="remarketing-scoring",
    description="Score a weekly customer file with the champion.",
    handoffs={
        "rows": Handoff(CHUNKS),
        "rejects": Handoff(TABLE),
        "model": Handoff(DOCUMENT, "remarketing.ports:ModelRef"),
        "arms": Handoff(DOCUMENT, "remarketing.experiments:Arms"),
        "endpoints": Handoff(DOCUMENT, "remarketing.experiments:Served"),  # each arm's
        "scored": Handoff(CHUNKS),
    },
    steps=(
        Step(
            "validate",
            "remarketing.scoring:validate",
            params=("source_uri",),
            outputs=("rows", "rejects"),
            settings=("scoring_chunk_rows",),
        ),
        # after validate, in its task: a bad file fails before anything is resolved or deployed, and a
        # good one pays one task start-up for both. Resolving and deploying are one step.
        Step(
            "deploy",
            "remarketing.scoring:resolve_and_deploy",
            outputs=("model", "arms", "endpoints"),
            ports=("registry", "deployer"),
            after=("validate",),
            joins_previous=True,
        ),
        Step(
            "score",
            "remarketing.scoring:score",
            inputs=("endpoints", "arms", "rows"),
            outputs=("scored",),
            ports=("deployer",),
            settings=("scoring_shards", "scoring_shard_retries"),
            sharded=True,
        ),
        Step(
            "publish",
            "remarketing.publish:publish",
            inputs=("model", "arms", "rows", "scored", "rejects"),
            settings=(
                "budget",
                "budget_share",
                "call_cost",
                "conversion_value",
                "holdout_share",
                "explore_share",
                "seed",
                "lookup_runs_kept",
                "lookup_db_host",
                "lookup_db_port",
                "lookup_db_name",
                "lookup_db_user",
                "lookup_db_password",
                "lookup_db_sslmode",
            ),
        ),
    ),
)

MONITORING = Pipeline(
    kind="monitoring",
    name="remarketing-monitoring",
    description="Measure a campaign's outcomes against its scoring run's promise; extend the history.",
    handoffs={"outcomes": Handoff(TABLE), "scoring": Handoff(DOCUMENT)},
    steps=(
        Step(
            "validate",
            "remarketing.monitoring:validate",
            params=("source_uri",),
            outputs=("outcomes", "scoring"),
        ),
        Step("measure", "remarketing.monitoring:measure", inputs=("outcomes", "scoring"), ports=("tracker",)),
        # the experiment's look at this week: the challenger promoted, the experiment ended, or on
        Step(
            "judge-experiment",
            "remarketing.monitoring:judge_experiment",
            inputs=("outcomes", "scoring"),
            ports=("registry",),
            after=("measure",),
        ),
        # after measure: the history grows only with outcomes that were measured
        Step(
            "extend-history",
            "remarketing.monitoring:extend_history",
            inputs=("outcomes", "scoring"),
            after=("judge-experiment",),
        ),
        Step(
            "decide-retraining",
            "remarketing.retraining:decide",
            inputs=("scoring",),
            after=("extend-history",),
            settings=(
                "retrain_floor_lift",
                "retrain_when_outside_interval",
                "retrain_on_drift",
                "retrain_min_outcomes",
            ),
        ),
    ),
)

PIPELINES = {p.kind: p for p in (TRAINING, SCORING, MONITORING)}
SHARDS = "shards"  # the pipeline parameter of a sharded pipeline: the shard numbers


def per_family_argument(name: str, family: str) -> str:
    """The task argument carrying one family's hand-off into a step that takes all of them."""
    return f"{name}_{family}"


def shard_numbers(shards: int) -> list[int]:
    """The ``shards`` argument a launcher gives a sharded pipeline for ``settings.scoring_shards``."""
    return list(range(shards))
