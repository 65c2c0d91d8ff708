"""taskito.retry.retry_delay: full-jitter backoff and explicit delay lists."""

from __future__ import annotations

import random

import pytest

from taskito.retry import retry_delay


@pytest.mark.parametrize(("retry_number", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0)])
def test_retry_delay_jitter_stays_within_backoff_ceiling(retry_number, ceiling):
    rng = random.Random(1234)
    delays = [retry_delay(retry_number, backoff=2.0, max_delay=1000, rng=rng)
              for _ in range(500)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # full jitter: the draws spread over the whole range, not just near the ceiling
    assert min(delays) < ceiling * 0.1
    assert max(delays) > ceiling * 0.9


def test_retry_delay_jitter_is_a_uniform_draw_from_the_given_rng():
    expected = random.Random(7).uniform(0.0, 4.0)
    assert retry_delay(2, backoff=2.0, max_delay=100, rng=random.Random(7)) == expected


def test_retry_delay_jitter_is_capped_by_max_delay():
    rng = random.Random(99)
    delays = [retry_delay(30, backoff=1.0, max_delay=10.0, rng=rng) for _ in range(200)]
    assert all(0.0 <= d <= 10.0 for d in delays)
    assert max(delays) > 9.0


def test_retry_delay_survives_huge_retry_numbers():
    delay = retry_delay(10_000, backoff=1.0, max_delay=60.0, rng=random.Random(0))
    assert 0.0 <= delay <= 60.0


def test_retry_delay_zero_backoff_means_no_wait():
    assert retry_delay(4, backoff=0.0, max_delay=60.0, rng=random.Random(0)) == 0.0


def test_retry_delay_explicit_list_is_used_in_order():
    delays = [1, 5, 30]
    got = [retry_delay(n, backoff=99.0, max_delay=3600, delays=delays) for n in (1, 2, 3)]
    assert got == [1.0, 5.0, 30.0]


def test_retry_delay_explicit_list_repeats_its_last_entry():
    delays = [1, 5, 30]
    assert [retry_delay(n, backoff=1.0, max_delay=3600, delays=delays)
            for n in (4, 5, 50)] == [30.0, 30.0, 30.0]


def test_retry_delay_explicit_list_is_capped_by_max_delay():
    assert retry_delay(2, backoff=1.0, max_delay=10.0, delays=[1, 600]) == 10.0


def test_retry_delay_explicit_list_ignores_the_rng():
    rng = random.Random(5)
    state = rng.getstate()
    assert retry_delay(1, backoff=1.0, max_delay=60, delays=[3], rng=rng) == 3.0
    assert rng.getstate() == state


@pytest.mark.parametrize("retry_number", [0, -1])
def test_retry_delay_rejects_retry_number_below_one(retry_number):
    with pytest.raises(ValueError, match="starts at 1"):
        retry_delay(retry_number, backoff=1.0, max_delay=60.0)


@pytest.mark.parametrize("number", [0, -1])
def test_retry_numbers_start_at_one(number):
    with pytest.raises(ValueError, match=r"^retry_number starts at 1$"):
        retry_delay(number, backoff=1.0, max_delay=60.0)
