"""taskito as a backend of Django's Tasks framework (`django.tasks`, or the `django-tasks`
backport on Django 5.2): `backend.TaskitoBackend`, configured as
`TASKS = {"default": {"BACKEND": "taskito.backends.TaskitoBackend"}}` (a re-export kept so
settings stay short). `utils` holds its framework-free helpers."""
