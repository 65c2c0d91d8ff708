"""The dead-letter admin: retry and delete through the Queue, with reports and permissions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from taskito import queue as default_queue
from taskito.models import DeadLetter, Job
from tests.admin.conftest import (
    action_names,
    change_url,
    changelist_url,
    messages_of,
    needs_page_actions,
    run_action,
    status_of,
)

pytestmark = pytest.mark.django_db

LETTERS = changelist_url("deadletter")


def test_changelist_lists_dead_letters_with_their_error(superuser_client, dead_letter):
    letter = dead_letter()
    response = superuser_client.get(LETTERS)
    assert response.status_code == 200
    assert [r.id for r in response.context["cl"].result_list] == [letter.id]
    html = response.content.decode()
    assert "Fatal: not worth retrying" in html
    assert change_url("job", letter.original_job_id) in html


def test_search_by_original_job_id(superuser_client, dead_letter):
    letter, other = dead_letter(), dead_letter()
    response = superuser_client.get(LETTERS, {"q": str(letter.original_job_id)})
    assert [r.id for r in response.context["cl"].result_list] == [letter.id]
    assert other.id != letter.id


def test_dead_letter_page_is_read_only(superuser_client, dead_letter):
    letter = dead_letter(metadata={"order": 12})
    response = superuser_client.get(change_url("deadletter", letter.id))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Fatal: not worth retrying" in html and "&quot;order&quot;: 12" in html
    assert 'name="_save"' not in html
    assert superuser_client.post(change_url("deadletter", letter.id), {}).status_code == 403


# -- retry -------------------------------------------------------------------------------------

def test_retry_enqueues_a_new_job_and_removes_the_dead_letter(superuser_client, dead_letter):
    letter = dead_letter()
    response = run_action(superuser_client, "deadletter", "retry_dead_letters", [letter.id])
    assert messages_of(response) == ["1 dead letter retried."]
    assert not DeadLetter.objects.exists()
    new = Job.objects.exclude(id=letter.original_job_id).get()
    assert (new.task_name, new.status_label) == (letter.task_name, "pending")


def test_retry_reports_plurals_and_skips_letters_gone_meanwhile(
        superuser_client, dead_letter, monkeypatch):
    letters = [dead_letter(), dead_letter(), dead_letter()]
    real = default_queue.retry_dead

    def retried_elsewhere_first(dead_id):
        if dead_id == letters[0].id:  # another operator was quicker
            real(dead_id)
        return real(dead_id)

    monkeypatch.setattr(default_queue, "retry_dead", retried_elsewhere_first)
    response = run_action(superuser_client, "deadletter", "retry_dead_letters",
                          [d.id for d in letters])
    assert messages_of(response) == [
        "2 dead letters retried, 1 skipped (1 already retried or deleted)."]
    assert Job.objects.filter(status=0).count() == 3


@needs_page_actions
def test_retry_from_the_dead_letter_page_opens_the_new_job(superuser_client, dead_letter):
    letter = dead_letter()
    response = superuser_client.post(
        change_url("deadletter", letter.id),
        {"CHANGE_FORM-action": "retry_dead_letters", "_selected_action": str(letter.id)},
        follow=True)
    new = Job.objects.exclude(id=letter.original_job_id).get()
    assert response.redirect_chain[-1][0] == change_url("job", new.id)
    assert messages_of(response) == ["1 dead letter retried."]


# -- delete ------------------------------------------------------------------------------------

def test_delete_asks_first_then_deletes_through_the_queue(superuser_client, dead_letter,
                                                          monkeypatch):
    letters = [dead_letter(), dead_letter()]
    calls = []
    real = default_queue.delete_dead
    monkeypatch.setattr(default_queue, "delete_dead", lambda i: calls.append(i) or real(i))
    ids = [str(d.id) for d in letters]
    response = superuser_client.post(LETTERS, {"action": "delete_dead_letters",
                                               "_selected_action": ids, "index": "0"})
    assert response.status_code == 200
    assert "Are you sure" in response.content.decode()
    assert DeadLetter.objects.count() == 2  # nothing yet
    response = superuser_client.post(LETTERS, {"action": "delete_dead_letters",
                                               "_selected_action": ids, "post": "yes"},
                                     follow=True)
    assert messages_of(response) == ["2 dead letters deleted."]
    assert not DeadLetter.objects.exists()
    assert sorted(map(str, calls)) == sorted(ids)
    assert all(status_of(d.original_job_id) == "dead" for d in letters)  # jobs stay


def test_delete_skips_letters_already_gone(superuser_client, dead_letter, monkeypatch):
    letters = [dead_letter(), dead_letter(), dead_letter()]
    real = default_queue.delete_dead

    def deleted_elsewhere_first(dead_id):
        if dead_id == letters[1].id:  # another operator was quicker: the second call finds none
            assert real(dead_id) is True
        return real(dead_id)

    monkeypatch.setattr(default_queue, "delete_dead", deleted_elsewhere_first)
    response = superuser_client.post(LETTERS, {"action": "delete_dead_letters", "post": "yes",
                                               "_selected_action": [str(d.id) for d in letters]},
                                     follow=True)
    assert messages_of(response) == [
        "2 dead letters deleted, 1 skipped (1 already retried or deleted)."]
    assert not DeadLetter.objects.exists()


def test_the_page_delete_button_goes_through_the_queue(superuser_client, dead_letter,
                                                       monkeypatch):
    letter = dead_letter()
    calls = []
    real = default_queue.delete_dead
    monkeypatch.setattr(default_queue, "delete_dead", lambda i: calls.append(i) or real(i))
    url = reverse("admin:taskito_deadletter_delete", args=[letter.id])
    assert superuser_client.get(url).status_code == 200
    superuser_client.post(url, {"post": "yes"})
    assert calls == [letter.id]
    assert not DeadLetter.objects.exists()


# -- permissions -------------------------------------------------------------------------------

def test_superuser_sees_retry_and_delete(superuser_client, dead_letter):
    dead_letter()
    assert action_names(superuser_client.get(LETTERS)) == ["retry_dead_letters",
                                                           "delete_dead_letters"]


def test_view_only_user_sees_no_action_and_a_forged_post_changes_nothing(viewer_client,
                                                                         dead_letter):
    letter = dead_letter()
    response = viewer_client.get(LETTERS)
    assert response.status_code == 200
    assert action_names(response) == []
    run_action(viewer_client, "deadletter", "retry_dead_letters", [letter.id])
    viewer_client.post(LETTERS, {"action": "delete_dead_letters", "post": "yes",
                                 "_selected_action": [str(letter.id)]})
    response = viewer_client.post(reverse("admin:taskito_deadletter_delete", args=[letter.id]),
                                  {"post": "yes"})
    assert response.status_code == 403
    assert DeadLetter.objects.filter(id=letter.id).exists()
    assert Job.objects.count() == 1


def test_retry_and_delete_need_their_own_permissions(make_staff, dead_letter):
    letter = dead_letter()
    retrier = make_staff("retrier", "view_deadletter", "change_deadletter")
    assert action_names(retrier.get(LETTERS)) == ["retry_dead_letters"]
    retrier.post(LETTERS, {"action": "delete_dead_letters", "post": "yes",
                           "_selected_action": [str(letter.id)]})
    assert DeadLetter.objects.filter(id=letter.id).exists()
    deleter = make_staff("deleter", "view_deadletter", "delete_deadletter")
    assert action_names(deleter.get(LETTERS)) == ["delete_dead_letters"]
    run_action(deleter, "deadletter", "retry_dead_letters", [letter.id])
    assert DeadLetter.objects.filter(id=letter.id).exists()


def test_anonymous_changes_nothing(anon_client, dead_letter):
    letter = dead_letter()
    response = anon_client.post(LETTERS, {"action": "retry_dead_letters", "index": "0",
                                          "_selected_action": [str(letter.id)]})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert DeadLetter.objects.filter(id=letter.id).exists()


def test_changelist_query_count_does_not_grow_with_the_page(superuser_client, dead_letter,
                                                            django_assert_max_num_queries):
    dead_letter()
    with django_assert_max_num_queries(8):
        superuser_client.get(LETTERS)
    for _ in range(12):
        dead_letter()
    with django_assert_max_num_queries(8):
        superuser_client.get(LETTERS)
