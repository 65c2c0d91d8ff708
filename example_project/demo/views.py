"""The demo page: start a job, watch its progress live, see the dead letters."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from taskito import chord, queue
from taskito.contrib.sse import progress_url

from .tasks import always_fails, check_services, resize_image, total_words, word_count

# The id of the last job this visitor started, in their session: the page hands the
# progress token of that job, and of no other, to its browser.
SESSION_JOB = "demo_job_id"
SESSION_WORKFLOW = "demo_workflow_id"
DOCUMENTS = ["the quick brown fox", "jumps over", "the lazy dog", "and runs away",
             "into the dark forest where nobody follows"]


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {**queue_context(request), "job": None}
    job_id = request.session.get(SESSION_JOB)
    job = queue.get_job(job_id) if job_id else None
    if job is not None:
        # with the partial results: the resize task reports the tiles it has done
        context.update(job=job, progress_url=progress_url(job.id) + "&partial=1")
    workflow_id = request.session.get(SESSION_WORKFLOW)
    workflow = queue.get_workflow(workflow_id) if workflow_id else None
    if workflow is not None:
        steps = workflow.jobs
        context.update(workflow=workflow.to_dict(), steps_done=sum(
            1 for job in steps if job.status == "complete"), steps_total=len(steps))
    return render(request, "demo/index.html", context)


@require_GET
def queue_summary(request: HttpRequest) -> HttpResponse:
    """The statistics and dead letters part of the page, which its script reloads when a
    job finishes."""
    return render(request, "demo/queue.html", queue_context(request))


@require_POST
def start_resize(request: HttpRequest) -> HttpResponseRedirect:
    return start(request, resize_image.delay("photo.jpg").id)


@require_POST
def start_fan_out(request: HttpRequest) -> HttpResponseRedirect:
    """Fan out and collect: one word_count job per document side by side, then total_words
    with the list of their results. Every step is written now, in this request's
    transaction; the workers advance it, nothing here waits."""
    workflow = chord([word_count.s(text) for text in DOCUMENTS], total_words.s()).apply_async()
    request.session[SESSION_WORKFLOW] = str(workflow.id)
    return redirect("demo:index")


@require_POST
def start_checks(request: HttpRequest) -> HttpResponseRedirect:
    """An `async def` task: it waits on the worker's event loop, not in a thread."""
    return start(request, check_services.delay(["database", "search", "mail"]).id)


@require_POST
def start_failing(request: HttpRequest) -> HttpResponseRedirect:
    return start(request, always_fails.delay("this task always fails").id)


def start(request: HttpRequest, job_id: Any) -> HttpResponseRedirect:
    request.session[SESSION_JOB] = str(job_id)
    return redirect("demo:index")


def queue_context(request: HttpRequest) -> dict[str, Any]:
    """Counts and the last dead letters (task and time); their error text only for users
    who may read dead letters in the admin."""
    show_errors = request.user.is_staff and request.user.has_perm("taskito.view_deadletter")
    letters = [{"task_name": letter["task_name"], "retry_count": letter["retry_count"],
                "failed_at": parse_datetime(letter["failed_at"]),
                "error": letter["error"] if show_errors else None}
               for letter in queue.dead_letters(limit=10)]
    return {"stats": list(queue.stats().items()), "dead_letters": letters,
            "show_errors": show_errors}
