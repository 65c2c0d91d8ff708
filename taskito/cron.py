"""Cron arithmetic through croniter (pure: the time is passed in)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from taskito.exceptions import ConfigurationError


def _seconds_first(expr: str) -> bool:
    return len(expr.split()) == 6


def validate_cron(expr: str, tz: str = "UTC") -> None:
    """Raise ConfigurationError unless `expr` is a 5-field cron, or a 6-field one with
    seconds first (as in the original taskito), and `tz` a known time zone."""
    if not isinstance(expr, str) or len(expr.split()) not in (5, 6) or not croniter.is_valid(
            expr, second_at_beginning=_seconds_first(expr)):
        raise ConfigurationError(
            f"cron {expr!r} is not valid: use 5 fields (minute hour day month weekday) or 6 "
            "with seconds first, e.g. '*/5 * * * *' or '*/10 * * * * *'")
    zone(tz)


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigurationError(f"unknown time zone {tz!r}") from None


def next_fires(expr: str, after: datetime, tz: str = "UTC", count: int = 1) -> list[datetime]:
    """The next `count` fire times strictly after `after`, as aware UTC datetimes; the cron
    is read in time zone `tz` (so "0 9 * * *" in Europe/Paris follows daylight saving)."""
    validate_cron(expr, tz)
    it = croniter(expr, after.astimezone(zone(tz)), second_at_beginning=_seconds_first(expr))
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


def next_fire(expr: str, after: datetime, tz: str = "UTC") -> datetime:
    return next_fires(expr, after, tz, 1)[0]
