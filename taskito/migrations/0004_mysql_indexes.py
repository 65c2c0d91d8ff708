# Made with `makemigrations --empty taskito`, then filled in.
"""MariaDB/MySQL only (nothing happens on the other databases): what the partial indexes and
the partial unique constraint give elsewhere, since Django ignores conditions there.

- "one pending or running job per unique_key": a stored generated column that holds the key
  only while the job is pending (0) or running (1), under a plain unique index (NULLs never
  collide); its binary collation compares keys exactly, as the other databases do;
- the claim and expiry indexes lead with `status`, so they hold the pending rows together in
  claim order instead of every job ever run.
"""

from django.db import migrations

JOB = "taskito_job"
FORWARD = (
    f"ALTER TABLE {JOB} ADD COLUMN active_unique_key varchar(255) COLLATE utf8mb4_bin "
    f"GENERATED ALWAYS AS (CASE WHEN status IN (0, 1) THEN unique_key END) STORED",
    f"CREATE UNIQUE INDEX taskito_job_unique_active ON {JOB} (active_unique_key)",
    f"DROP INDEX taskito_job_ready ON {JOB}",
    f"CREATE INDEX taskito_job_ready ON {JOB} (status, priority DESC, scheduled_at, id)",
    f"DROP INDEX taskito_job_ready_queue ON {JOB}",
    f"CREATE INDEX taskito_job_ready_queue ON {JOB} "
    f"(status, queue, priority DESC, scheduled_at, id)",
    f"DROP INDEX taskito_job_expiry ON {JOB}",
    f"CREATE INDEX taskito_job_expiry ON {JOB} (status, expires_at)",
)
BACKWARD = (
    f"DROP INDEX taskito_job_expiry ON {JOB}",
    f"CREATE INDEX taskito_job_expiry ON {JOB} (expires_at)",
    f"DROP INDEX taskito_job_ready_queue ON {JOB}",
    f"CREATE INDEX taskito_job_ready_queue ON {JOB} (queue, priority DESC, scheduled_at, id)",
    f"DROP INDEX taskito_job_ready ON {JOB}",
    f"CREATE INDEX taskito_job_ready ON {JOB} (priority DESC, scheduled_at, id)",
    f"DROP INDEX taskito_job_unique_active ON {JOB}",
    f"ALTER TABLE {JOB} DROP COLUMN active_unique_key",
)


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "mysql":
            return
        for sql in statements:
            schema_editor.execute(sql)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('taskito', '0003_job_partial_result'),
    ]

    operations = [
        # DDL commits implicitly on MySQL: no transaction around it
        migrations.RunPython(_run(FORWARD), _run(BACKWARD), atomic=False, elidable=False),
    ]
