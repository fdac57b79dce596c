"""What a child workflow sends back to the workflow that started it, declared on its own.

The account starts jobs and a job settles with its account; a chain starts clip workflows and
each clip reports its progress to its chain. Each pair needs the other's handlers. The part
the child sends is declared here, as a base class the parent workflow implements, so the
parent's module imports the child's and never the other way round (no import cycle), and
senders still name the handler by method (`handle.signal(AccountHandlers.settle, ...)`).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from reelay.accounts import Settlement


class SegmentProgress(BaseModel):
    """How far one segment of a chain is (0..1)."""

    index: int
    progress: float


class AccountHandlers:
    """The signal `AccountWorkflow` takes from its jobs."""

    @workflow.signal
    async def settle(self, settlement: Settlement) -> None:
        """A job ended: charge its cost, refund the rest of its reservation, admit the next."""
        raise NotImplementedError


class ChainHandlers:
    """The signal a chained job's `VideoGenerationWorkflow` takes from its segments."""

    @workflow.signal
    def segment_progress(self, report: SegmentProgress) -> None:
        """A segment's own progress, so the chain's progress counts the one in flight."""
        raise NotImplementedError
