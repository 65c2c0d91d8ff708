"""`taskito.backends.TaskitoBackend`, the path TASKS settings name: a re-export of
`taskito.contrib.tasks_backend.backend`, where the Django Tasks backend lives."""

from taskito.contrib.tasks_backend.backend import *  # noqa: F403
