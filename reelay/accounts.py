"""A tenant's ledger and admission rules: pure and deterministic, the one home of the rules.

Run inside one transaction of the ledger store (`reelay.store`) per change; before that,
inside `AccountWorkflow` (still registered for its open runs and recorded histories).

Money is integer micro-dollars. `deposits` (opening balance and top-ups) = `balance` +
`spent`; `available` = `balance` - `reserved`. A submit reserves the job's estimate; the
job's settlement charges its actual cost and releases the rest. Every operation is keyed by
job id (or top-up reference), so a retried or duplicated message changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from reelay import idempotency
from reelay.errors import ErrorCode
from reelay.jobs import JobSpec
from reelay.tenants import Limits

#: Marks a job's `account_id` as the ledger store's (the API admitted it, not `AccountWorkflow`).
LEDGER_ACCOUNT_PREFIX = "ledger:"

# How long finished jobs and top-up references are remembered for deduplication.
REMEMBER_DAYS = 2


class Refusal(Exception):
    """A submit the account refuses; `kind` becomes the client's error type."""

    def __init__(self, kind: ErrorCode, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.kind = str(kind)  # a plain string in Temporal failures
        self.message = message
        self.retry_after = retry_after


class Usage(BaseModel):
    jobs: int = 0
    seconds: float = 0.0
    micro_usd: int = 0


class DayUsage(Usage):
    day: str
    by_app: dict[str, Usage] = Field(default_factory=dict)


class Reservation(BaseModel):
    job_id: str
    amount_micro_usd: int
    app_id: str | None = None
    request_hash: str | None = None
    reserved_at: datetime | None = None
    started: bool = Field(
        default=False, description="its workflow was seen running (the reaper checked it)"
    )


class Remembered(BaseModel):
    """A job or top-up seen recently: for idempotent retries."""

    day: str
    request_hash: str | None = None


class AccountState(BaseModel):
    tenant_id: str
    limits: Limits | None = Field(default=None, description="as of the latest submit")
    deposits_micro_usd: int
    spent_micro_usd: int = 0
    reservations: dict[str, Reservation] = Field(default_factory=dict)
    running: list[str] = Field(default_factory=list)
    queue: list[str] = Field(default_factory=list)
    today: DayUsage
    jobs: dict[str, Remembered] = Field(default_factory=dict)
    top_ups: dict[str, Remembered] = Field(default_factory=dict)

    @property
    def reserved_micro_usd(self) -> int:
        return sum(r.amount_micro_usd for r in self.reservations.values())

    @property
    def balance_micro_usd(self) -> int:
        return self.deposits_micro_usd - self.spent_micro_usd

    @property
    def available_micro_usd(self) -> int:
        return self.balance_micro_usd - self.reserved_micro_usd


class SubmitJob(BaseModel):
    spec: JobSpec
    limits: Limits
    queue_cap: int
    request_hash: str | None = None


class SubmitOutcome(BaseModel):
    job_id: str
    request_id: str | None = Field(
        default=None, description="of the submit that made the job (tells a replayed update)"
    )
    queue_position: int | None = Field(description="None when running, 1.. when waiting")
    available_micro_usd: int
    duplicate: bool = False


class Settlement(BaseModel):
    job_id: str
    cost_micro_usd: int = Field(ge=0)
    seconds: float = 0.0


class TopUp(BaseModel):
    reference: str
    amount_micro_usd: int = Field(gt=0)


class AccountSnapshot(BaseModel):
    tenant_id: str
    deposits_micro_usd: int
    spent_micro_usd: int
    reserved_micro_usd: int
    balance_micro_usd: int
    available_micro_usd: int
    running: int
    queued: int
    today: DayUsage


def ledger_account_id(tenant_id: str) -> str:
    return f"{LEDGER_ACCOUNT_PREFIX}{tenant_id}"


def is_ledger_account(account_id: str) -> bool:
    return account_id.startswith(LEDGER_ACCOUNT_PREFIX)


def day_of(now: datetime) -> str:
    return now.date().isoformat()


def seconds_to_next_day(now: datetime) -> int:
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
    return max(1, int((midnight - now).total_seconds()) + 1)


def refusal_for(
    request: SubmitJob,
    now: datetime,
    *,
    jobs_today: int,
    available_micro_usd: int,
    running: int,
    queued: int,
) -> Refusal | None:
    """Why the account cannot take this job now (None when it can): the admission rules,
    for the ledger store's rows and for `Ledger`'s state alike."""
    limits = request.limits
    if jobs_today >= limits.jobs_per_day:
        return Refusal(
            ErrorCode.DAILY_QUOTA_EXCEEDED,
            f"daily limit of {limits.jobs_per_day} jobs reached; it resets at 00:00 UTC",
            retry_after=seconds_to_next_day(now),
        )
    estimate = request.spec.estimated_cost_micro_usd
    if estimate > available_micro_usd:
        return Refusal(
            ErrorCode.INSUFFICIENT_CREDITS,
            f"Insufficient credits: this job costs ${estimate / 1e6:.2f}, "
            f"available balance is ${available_micro_usd / 1e6:.2f}",
        )
    if running >= limits.concurrent_jobs and queued >= request.queue_cap:
        return Refusal(
            ErrorCode.QUEUE_FULL,
            f"{queued} jobs are already waiting for one of "
            f"{limits.concurrent_jobs} concurrent slots; try again when one finishes",
            retry_after=30,
        )
    return None


def charge(settlement: Settlement, reserved_micro_usd: int) -> int:
    """What a finished job is charged: its cost, never more than was reserved for it."""
    return min(settlement.cost_micro_usd, reserved_micro_usd)


class Ledger:
    def __init__(self, state: AccountState) -> None:
        self.state = state

    @classmethod
    def open(cls, tenant_id: str, deposits_micro_usd: int, now: datetime) -> Ledger:
        return cls(
            AccountState(
                tenant_id=tenant_id,
                deposits_micro_usd=deposits_micro_usd,
                today=DayUsage(day=day_of(now)),
            )
        )

    def roll(self, now: datetime) -> None:
        """Start a new usage day, and forget what is too old to be retried."""
        today = day_of(now)
        if self.state.today.day != today:
            self.state.today = DayUsage(day=today)
        oldest = day_of(now - timedelta(days=REMEMBER_DAYS))
        for memory in (self.state.jobs, self.state.top_ups):
            for key in [k for k, seen in memory.items() if seen.day < oldest]:
                del memory[key]

    def duplicate_of(self, request: SubmitJob) -> SubmitOutcome | None:
        """The earlier outcome when this job id was already submitted with the same body."""
        job_id = request.spec.job_id
        seen = self.state.jobs.get(job_id)
        if seen is None:
            return None
        if not idempotency.same_request(seen.request_hash, request.request_hash):
            raise Refusal(ErrorCode.IDEMPOTENCY_CONFLICT, idempotency.CONFLICT_MESSAGE)
        return SubmitOutcome(
            job_id=job_id,
            queue_position=self.position(job_id),
            available_micro_usd=self.state.available_micro_usd,
            duplicate=True,
        )

    def check(self, request: SubmitJob, now: datetime) -> None:
        """Raise `Refusal` when the account cannot take this job now. Changes nothing."""
        if self.duplicate_of(request) is not None:
            return
        refusal = refusal_for(
            request,
            now,
            jobs_today=self.state.today.jobs if self.state.today.day == day_of(now) else 0,
            available_micro_usd=self.state.available_micro_usd,
            running=len(self.state.running),
            queued=len(self.state.queue),
        )
        if refusal is not None:
            raise refusal

    def reserve(self, request: SubmitJob, now: datetime) -> SubmitOutcome:
        """Take the job: reserve its estimate, count it, and run or queue it."""
        self.roll(now)
        self.check(request, now)
        duplicate = self.duplicate_of(request)
        if duplicate is not None:
            return duplicate
        spec = request.spec
        self.state.reservations[spec.job_id] = Reservation(
            job_id=spec.job_id,
            amount_micro_usd=spec.estimated_cost_micro_usd,
            app_id=spec.app_id,
            request_hash=request.request_hash,
            reserved_at=now,
        )
        self.state.limits = request.limits
        self.state.jobs[spec.job_id] = Remembered(
            day=self.state.today.day, request_hash=request.request_hash
        )
        self.state.today.jobs += 1
        self._app(spec.app_id).jobs += 1
        if len(self.state.running) < request.limits.concurrent_jobs:
            self.state.running.append(spec.job_id)
        else:
            self.state.queue.append(spec.job_id)
        return SubmitOutcome(
            job_id=spec.job_id,
            request_id=spec.request_id,
            queue_position=self.position(spec.job_id),
            available_micro_usd=self.state.available_micro_usd,
        )

    def settle(self, settlement: Settlement, now: datetime) -> list[str]:
        """Charge a finished job once; returns the queued jobs that may start now."""
        self.roll(now)
        reservation = self.state.reservations.pop(settlement.job_id, None)
        if reservation is not None:
            cost = charge(settlement, reservation.amount_micro_usd)
            self.state.spent_micro_usd += cost
            self.state.today.micro_usd += cost
            self.state.today.seconds += settlement.seconds
            app = self._app(reservation.app_id)
            app.micro_usd += cost
            app.seconds += settlement.seconds
        self.release_slot(settlement.job_id)
        return self.admit_waiting()

    def release_slot(self, job_id: str) -> None:
        if job_id in self.state.running:
            self.state.running.remove(job_id)
        if job_id in self.state.queue:
            self.state.queue.remove(job_id)

    def admit_waiting(self) -> list[str]:
        """Move waiting jobs into free slots, first come first served."""
        slots = self.state.limits.concurrent_jobs if self.state.limits else 1
        admitted: list[str] = []
        while self.state.queue and len(self.state.running) < slots:
            job_id = self.state.queue.pop(0)
            self.state.running.append(job_id)
            admitted.append(job_id)
        return admitted

    def forget(self, job_id: str) -> None:
        """Undo the reservation of a job that could not be started."""
        reservation = self.state.reservations.pop(job_id, None)
        self.state.jobs.pop(job_id, None)
        self.release_slot(job_id)
        if reservation is not None:
            self.state.today.jobs -= 1
            self._app(reservation.app_id).jobs -= 1

    def unconfirmed(self, reserved_before: datetime) -> list[Reservation]:
        """Reservations older than `reserved_before` whose job was never seen started."""
        return [
            r
            for r in self.state.reservations.values()
            if not r.started and r.reserved_at is not None and r.reserved_at < reserved_before
        ]

    def confirm_started(self, job_id: str) -> None:
        reservation = self.state.reservations.get(job_id)
        if reservation is not None:
            reservation.started = True

    def top_up(self, top_up: TopUp, now: datetime) -> None:
        self.roll(now)
        if top_up.reference in self.state.top_ups:
            return
        self.state.top_ups[top_up.reference] = Remembered(day=self.state.today.day)
        self.state.deposits_micro_usd += top_up.amount_micro_usd

    def position(self, job_id: str) -> int | None:
        if job_id in self.state.queue:
            return self.state.queue.index(job_id) + 1
        return None

    def snapshot(self) -> AccountSnapshot:
        s = self.state
        return AccountSnapshot(
            tenant_id=s.tenant_id,
            deposits_micro_usd=s.deposits_micro_usd,
            spent_micro_usd=s.spent_micro_usd,
            reserved_micro_usd=s.reserved_micro_usd,
            balance_micro_usd=s.balance_micro_usd,
            available_micro_usd=s.available_micro_usd,
            running=len(s.running),
            queued=len(s.queue),
            today=s.today,
        )

    def _app(self, app_id: str | None) -> Usage:
        key = app_id or ""
        return self.state.today.by_app.setdefault(key, Usage())
