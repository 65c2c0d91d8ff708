"""PostgreSQL: claims that lock only the rows they take and skip rows others hold."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from taskito.db.base import CLAIM_COLUMNS, JOB, Backend, ClaimedJob


class PostgreSQLBackend(Backend):
    vendor = "postgresql"

    def uid(self, value: uuid.UUID) -> Any:
        return value

    def claim(self, *, queues: Sequence[str] | None, limit: int, now: datetime,
              worker_id: str, token: str) -> list[ClaimedJob]:
        # The MATERIALIZED CTE with its LIMIT keeps the planner from locking more rows than
        # asked; FOR NO KEY UPDATE lets error/log rows reference the job without blocking.
        where, params = self.ready_filter(queues)
        returning = ", ".join(f"t.{c}" for c in CLAIM_COLUMNS)
        sql = (
            f"WITH picked AS MATERIALIZED (SELECT j.id FROM {JOB} j WHERE {where} "
            f"ORDER BY j.priority DESC, j.scheduled_at, j.id LIMIT %s "
            f"FOR NO KEY UPDATE OF j SKIP LOCKED) "
            f"UPDATE {JOB} t SET status = 1, started_at = %s, worker_id = %s, claim_token = %s, "
            f"attempts = t.attempts + 1, cancel_requested = false "
            f"FROM picked WHERE t.id = picked.id RETURNING {returning}"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [now, now, *params, limit, now, worker_id, token])
            rows = cursor.fetchall()
        return self._claimed(rows, token)
