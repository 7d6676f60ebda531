"""Training-data screening: a job's training file against its screening policy, before any GPU time (docs/screening.md).

The entry point for the rest of the workers:

- `screen(job_id, settings)`: the job's screen step (`gft.screen_job`): screens the file once and records the result
  on the job, or fails the job with `training_data_blocked`.
- `screened(job_id, settings)`: the train step's check, read from that stored result (never a second screening).
- `dry_run(...)`: the dry run of `POST /v1/files/{id}/screen` (`gft.screen_file`), a report in the artifact store.

Inside: `logic` is the pure part (rows -> tally -> the policy's decision -> messages, summary, report; trigger flags
from `workers.evaluation.triggers`), `step` the side effects (database, artifact store, metrics) around it.
"""

from workers.screening.step import dry_run, screen, screened

__all__ = ["dry_run", "screen", "screened"]
