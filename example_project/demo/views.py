from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from taskito import queue

from .tasks import always_fails, resize_image

# Statuses in which a job can still change; the job page reloads itself while in one.
ACTIVE_STATUSES = {"pending", "running"}


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    stats: dict[str, Any] = queue.stats()
    return render(request, "demo/index.html", {"stats": list(stats.items())})


@require_POST
def start_resize(request: HttpRequest) -> HttpResponseRedirect:
    job = resize_image.delay("photo.jpg")
    return redirect("demo:job", job_id=job.id)


@require_POST
def start_failing(request: HttpRequest) -> HttpResponseRedirect:
    job = always_fails.delay("this task always fails")
    return redirect("demo:job", job_id=job.id)


@require_GET
def job_detail(request: HttpRequest, job_id: UUID) -> HttpResponse:
    job = queue.get_job(job_id)
    if job is None:
        raise Http404("No such job")
    result: Any = None
    if job.status == "complete":
        # The job has finished, so result() returns at once (it only blocks while the
        # job is pending or running).
        result = job.result(timeout=1)
    context = {
        "job": job,
        "active": job.status in ACTIVE_STATUSES,
        "result": result,
        "logs": job.logs,
        "errors": job.errors,
    }
    return render(request, "demo/job.html", context)
