"""Retry schedule of failed handler attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.engine.inbox import store

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    for attempts, nominal in [(1, 2), (2, 4), (3, 8), (4, 16), (10, 600)]:
        delays = [store.backoff_s(attempts, base_s=2, max_s=600) for _ in range(200)]
        assert min(delays) >= nominal * 0.8 and max(delays) <= nominal * 1.2
        assert max(delays) - min(delays) > 0  # jittered, not identical


def test_failed_attempt_schedules_a_retry_and_releases_the_lease() -> None:
    values = store.failure_values(2, "ValueError: x", NOW, max_attempts=6, base_s=2, max_s=600)
    assert values["lease_owner"] is None and values["lease_until"] is None
    assert "status" not in values  # stays pending
    assert NOW + timedelta(seconds=3.2) <= values["next_attempt_at"] <= NOW + timedelta(seconds=4.8)
    assert values["last_error"] == "ValueError: x"


def test_last_attempt_parks_the_row() -> None:
    values = store.failure_values(6, "E" * 5000, NOW, max_attempts=6, base_s=2, max_s=600)
    assert values["status"] == "failed" and values["processed_at"] == NOW
    assert "next_attempt_at" not in values
    assert len(values["last_error"]) == store.MAX_ERROR_CHARS
