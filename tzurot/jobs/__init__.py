"""Jobs: the SAQ queue and worker, job ids, dedup, signing, waiting, results and cron."""

from tzurot.jobs.constants import QUEUE_NAME, JobPrefix
from tzurot.jobs.cron import CronTask, saq_cron_jobs
from tzurot.jobs.metrics import JobMetrics
from tzurot.jobs.models import GenerationHandler, JobState, JobView, QueueCounts, Submission
from tzurot.jobs.queue import JobOptions, JobQueue, job_id_for
from tzurot.jobs.results import ResultLog, StreamEntry
from tzurot.jobs.saq_queue import TzurotQueue
from tzurot.jobs.signing import PayloadSigner, shared_signing_secret
from tzurot.jobs.worker import GenerationJob, InProcessWorker, build_worker, retry_delay

__all__ = [
    "QUEUE_NAME",
    "CronTask",
    "GenerationHandler",
    "GenerationJob",
    "InProcessWorker",
    "JobMetrics",
    "JobOptions",
    "JobPrefix",
    "JobQueue",
    "JobState",
    "JobView",
    "PayloadSigner",
    "QueueCounts",
    "ResultLog",
    "StreamEntry",
    "Submission",
    "TzurotQueue",
    "build_worker",
    "job_id_for",
    "retry_delay",
    "saq_cron_jobs",
    "shared_signing_secret",
]
