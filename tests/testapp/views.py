"""Views the tests serve: an async view that enqueues (as an ASGI project would)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from tests.testapp import tasks


async def enqueue_add(request: HttpRequest) -> JsonResponse:
    job = await tasks.add.adelay(int(request.GET.get("a", 1)), int(request.GET.get("b", 2)))
    many = await tasks.add.amap([(1, 1), (2, 2)])
    return JsonResponse({"id": str(job.id), "many": [str(j.id) for j in many]})


async def enqueue_add_sync(request: HttpRequest) -> JsonResponse:
    job = tasks.add.delay(1, 2)  # refused on the event loop: SynchronousOnlyOperation
    return JsonResponse({"id": str(job.id)})


def enqueue_add_and_report(request: HttpRequest) -> JsonResponse:
    """A plain view that enqueues and reports what it sees of the job right away."""
    job = tasks.add.delay(int(request.GET.get("a", 1)), int(request.GET.get("b", 2)))
    return JsonResponse({"id": str(job.id), "status": job.status})
