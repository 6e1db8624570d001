"""How the worker's threads share the two lanes: the jobs queue first everywhere, some threads only it."""
from __future__ import annotations

from typing import Any

from layers.http.chalice_app import CrmChalice
from layers.queue.sqs import Queues
from layers.runtime.worker import Worker


def test_a_reserved_share_of_threads_never_takes_bulk_work() -> None:
    # GIVEN queues with a bulk lane, and without one
    both = Queues(jobs_url="https://sqs/jobs", dlq_url="https://sqs/jobs-dlq", max_receives=5,
                  bulk_url="https://sqs/bulk", bulk_dlq_url="https://sqs/bulk-dlq", bulk_max_receives=5)
    only_jobs = Queues(jobs_url="https://sqs/jobs", dlq_url="https://sqs/jobs-dlq", max_receives=5)

    def plans(queues: Queues, threads: int) -> list[list[tuple[str, int]]]:
        app = CrmChalice(app_name="poll-plans", configure_logs=False)
        worker = Worker(app, _QueueArns(), queues, threads=threads, wait_seconds=10)
        return [[(queue.lane, wait) for queue, wait in polls] for polls in worker.poll_plans()]

    # WHEN the worker plans its threads' receives
    # THEN a quarter of the threads (at least one of two) wait on the jobs queue alone; the others ask the
    # jobs queue first without waiting, then wait on the bulk queue; a lone thread asks both and waits on
    # the jobs queue; without a bulk queue every thread waits on the jobs queue
    both_lanes = [("main", 0), ("bulk", 10)]
    assert plans(both, 8) == [[("main", 10)]] * 2 + [both_lanes] * 6
    assert plans(both, 2) == [[("main", 10)], both_lanes]
    assert plans(both, 1) == [[("main", 0), ("bulk", 0), ("main", 10)]]
    assert plans(only_jobs, 3) == [[("main", 10)]] * 3


class _QueueArns:
    """Enough SQS for the worker's constructor, which only asks each queue's ARN."""

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:  # noqa: N803
        return {"Attributes": {"QueueArn": f"arn:aws:sqs:us-east-1:000000000000:{QueueUrl.rsplit('/', 1)[-1]}"}}
