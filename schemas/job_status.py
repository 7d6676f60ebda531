"""A job's status and its worker step: the two columns that together say where a job is in its lifecycle.

Here, not in the state store, so the wire types, the control plane and the workers all name them the same way.
The allowed changes of status, and the moves that make them, are in `service.state.lifecycle`.
"""

from enum import StrEnum


class JobStatus(StrEnum):
    """What the API shows as `status`: OpenAI's fine-tuning statuses plus this service's `paused` and `held`.
    A StrEnum, so a member equals, hashes and serialises as its string (the database and JSON hold the string)."""

    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    HELD = "held"  # trained and evaluated, waiting for an admin's review (gate release_mode "review")
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"  # stopped by the tenant; resume continues from the latest checkpoint


# Finished: the tenant sees a final result (an admin may still override a job the gate blocked).
TERMINAL_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
UNFINISHED_STATUSES: frozenset[JobStatus] = frozenset(JobStatus) - TERMINAL_STATUSES
# A worker step is due or under way: the statuses a step claims, heartbeats and may fail a job from.
LIVE_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.VALIDATING_FILES, JobStatus.QUEUED, JobStatus.RUNNING})


class Step(StrEnum):
    """The worker step a live job is at (the `step` column), which refines its status:

        validating_files  validate
        queued            validate or screen (the screen phase: no training slot), then train (waiting for or
                          dispatched to a fair-share training slot)
        running           train (no adapter yet), then evaluate (adapter stored)

    `service.state.jobs.next_step` derives the step due from the two columns."""

    VALIDATE = "validate"
    SCREEN = "screen"
    TRAIN = "train"
    EVALUATE = "evaluate"


# A queued job at one of these steps is validated but not yet screened: its screen step is due, and it neither
# waits for nor holds a training slot.
SCREEN_PHASE: tuple[Step, ...] = (Step.VALIDATE, Step.SCREEN)
