"""The account ledger's rules, without Temporal (the workflow only serialises calls to it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reelay.accounts import Ledger, Refusal, Settlement, SubmitJob, TopUp, seconds_to_next_day
from reelay.tenants import Limits
from tests.conftest import isolated_settings
from tests.support import TENANT, job_spec

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SETTINGS = isolated_settings()


def submit(
    job_id: str,
    *,
    seconds: int = 4,
    limits: Limits | None = None,
    app: str | None = None,
    request_hash: str | None = None,
    cap: int = 10,
) -> SubmitJob:
    spec = job_spec(SETTINGS, "a prompt", duration_seconds=seconds).model_copy(
        update={"job_id": job_id, "app_id": app}
    )
    return SubmitJob(
        spec=spec,
        limits=limits or Limits(concurrent_jobs=2, jobs_per_day=10),
        queue_cap=cap,
        request_hash=request_hash,
    )


def conserved(ledger: Ledger) -> bool:
    s = ledger.state
    return s.deposits_micro_usd == s.balance_micro_usd + s.spent_micro_usd and (
        s.available_micro_usd == s.balance_micro_usd - s.reserved_micro_usd
    )


def test_reserve_then_settle_charges_the_actual_cost_and_releases_the_rest() -> None:
    ledger = Ledger.open(TENANT.id, 1_000_000, NOW)
    outcome = ledger.reserve(submit("j1"), NOW)  # 4 s x $0.10
    assert outcome.queue_position is None
    assert ledger.state.reserved_micro_usd == 400_000
    assert outcome.available_micro_usd == 600_000
    ledger.settle(Settlement(job_id="j1", cost_micro_usd=350_000, seconds=3.5), NOW)
    assert ledger.state.reserved_micro_usd == 0
    assert ledger.state.spent_micro_usd == 350_000
    assert ledger.state.available_micro_usd == 650_000
    assert ledger.state.today.seconds == 3.5
    assert conserved(ledger)


def test_settling_twice_charges_once() -> None:
    ledger = Ledger.open(TENANT.id, 1_000_000, NOW)
    ledger.reserve(submit("j1"), NOW)
    for _ in range(3):
        ledger.settle(Settlement(job_id="j1", cost_micro_usd=400_000, seconds=4), NOW)
    assert ledger.state.spent_micro_usd == 400_000
    assert conserved(ledger)


def test_failed_and_cancelled_jobs_are_refunded_in_full() -> None:
    ledger = Ledger.open(TENANT.id, 1_000_000, NOW)
    ledger.reserve(submit("j1"), NOW)
    ledger.settle(Settlement(job_id="j1", cost_micro_usd=0), NOW)
    assert ledger.state.available_micro_usd == 1_000_000
    assert ledger.state.spent_micro_usd == 0


def test_a_short_balance_is_refused_and_nothing_changes() -> None:
    ledger = Ledger.open(TENANT.id, 700_000, NOW)
    ledger.reserve(submit("j1"), NOW)
    before = ledger.state.model_copy(deep=True)
    with pytest.raises(Refusal) as caught:
        ledger.reserve(submit("j2"), NOW)
    assert caught.value.kind == "insufficient_credits"
    assert ledger.state == before


def test_over_the_concurrency_limit_jobs_queue_in_order_and_start_as_slots_free() -> None:
    ledger = Ledger.open(TENANT.id, 10_000_000, NOW)
    one = Limits(concurrent_jobs=1, jobs_per_day=10)
    positions = [ledger.reserve(submit(f"j{n}", limits=one), NOW).queue_position for n in range(3)]
    assert positions == [None, 1, 2]
    assert ledger.settle(Settlement(job_id="j0", cost_micro_usd=0), NOW) == ["j1"]
    assert ledger.position("j2") == 1
    # A queued job that is cancelled leaves the queue without taking a slot.
    assert ledger.settle(Settlement(job_id="j2", cost_micro_usd=0), NOW) == []
    assert ledger.settle(Settlement(job_id="j1", cost_micro_usd=0), NOW) == []
    assert ledger.state.running == [] and ledger.state.queue == []


def test_a_full_queue_is_refused() -> None:
    ledger = Ledger.open(TENANT.id, 10_000_000, NOW)
    one = Limits(concurrent_jobs=1, jobs_per_day=10)
    ledger.reserve(submit("j0", limits=one, cap=1), NOW)
    ledger.reserve(submit("j1", limits=one, cap=1), NOW)
    with pytest.raises(Refusal) as caught:
        ledger.reserve(submit("j2", limits=one, cap=1), NOW)
    assert caught.value.kind == "queue_full"


def test_the_daily_quota_resets_at_midnight_utc() -> None:
    ledger = Ledger.open(TENANT.id, 10_000_000, NOW)
    two = Limits(concurrent_jobs=5, jobs_per_day=2)
    ledger.reserve(submit("j0", limits=two), NOW)
    ledger.reserve(submit("j1", limits=two), NOW)
    with pytest.raises(Refusal) as caught:
        ledger.reserve(submit("j2", limits=two), NOW)
    assert caught.value.kind == "daily_quota_exceeded"
    assert caught.value.retry_after == seconds_to_next_day(NOW) == 12 * 3600 + 1
    tomorrow = NOW + timedelta(hours=12)
    assert ledger.reserve(submit("j2", limits=two), tomorrow).queue_position is None


def test_a_repeated_submit_returns_the_first_outcome_and_a_changed_body_is_a_conflict() -> None:
    ledger = Ledger.open(TENANT.id, 10_000_000, NOW)
    first = ledger.reserve(submit("j1", request_hash="abc"), NOW)
    again = ledger.reserve(submit("j1", request_hash="abc"), NOW)
    assert again.duplicate and again.job_id == first.job_id
    assert ledger.state.reserved_micro_usd == 400_000
    assert ledger.state.today.jobs == 1
    with pytest.raises(Refusal) as caught:
        ledger.reserve(submit("j1", request_hash="other"), NOW)
    assert caught.value.kind == "idempotency_conflict"


def test_top_ups_are_idempotent_by_reference() -> None:
    ledger = Ledger.open(TENANT.id, 0, NOW)
    for _ in range(2):
        ledger.top_up(TopUp(reference="invoice-7", amount_micro_usd=5_000_000), NOW)
    assert ledger.state.deposits_micro_usd == 5_000_000
    assert conserved(ledger)


def test_usage_is_grouped_by_app() -> None:
    ledger = Ledger.open(TENANT.id, 10_000_000, NOW)
    ledger.reserve(submit("a1", app="web"), NOW)
    ledger.reserve(submit("b1", app="mobile"), NOW)
    ledger.settle(Settlement(job_id="a1", cost_micro_usd=400_000, seconds=4), NOW)
    usage = ledger.snapshot().today
    assert usage.jobs == 2
    assert usage.by_app["web"].micro_usd == 400_000
    assert usage.by_app["mobile"].jobs == 1
    assert usage.by_app["mobile"].micro_usd == 0


def test_reservations_not_seen_started_are_listed_for_the_reaper_until_confirmed() -> None:
    ledger = Ledger.open(TENANT.id, 1_000_000, NOW)
    ledger.reserve(submit("old"), NOW - timedelta(minutes=5))
    ledger.reserve(submit("new"), NOW)
    cutoff = NOW - timedelta(minutes=1)
    assert [r.job_id for r in ledger.unconfirmed(cutoff)] == ["old"]
    ledger.confirm_started("old")
    assert ledger.unconfirmed(cutoff) == []
    ledger.forget("new")
    assert set(ledger.state.reservations) == {"old"}
    assert ledger.state.today.jobs == 1
    assert conserved(ledger)
