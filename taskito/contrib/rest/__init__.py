"""DRF views for taskito: `path("tasks/", include("taskito.contrib.rest.urls"))`."""
