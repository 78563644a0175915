"""How the tickets' background work paces itself: the job worker, the webhook's timeout and the
reminders. One settings object of its own, so that a test shortens them all in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class TicketTiming:
    """How the job worker and the reminders pace themselves (tests shorten these)."""

    poll_seconds: float = 2.0  # look for jobs other processes queued this often
    retry_base_seconds: float = 2.0  # the first retry's wait; doubled per attempt
    retry_cap_seconds: float = 600.0
    # A claimed job is this process's for this long, renewed every third of it while it is in
    # flight: a dead process's jobs are taken over a lease after its last renewal.
    lease_seconds: float = 10.0
    delivery_timeout_seconds: float = 120.0
    webhook_timeout_seconds: float = 10.0
    reminder_check_seconds: float = 60.0
    keep_done_jobs: timedelta = timedelta(days=7)
    batch: int = 50

    @property
    def renew_seconds(self) -> float:
        """How often the leases of the jobs in flight are renewed (the worker's heartbeat)."""
        return self.lease_seconds / 3.0


__all__ = ["TicketTiming"]
