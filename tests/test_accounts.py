"""Signing up, logging in and logging out, as a person does it in the pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_the_home_page_says_what_the_studio_is_and_offers_sign_up_and_log_in(client: Client) -> None:
    page = client.get("/").content.decode()
    assert "watch its layers form" in page
    assert 'href="/accounts/signup/"' in page
    assert 'href="/accounts/login/"' in page
    assert "Log out" not in page


def test_alice_signs_up_and_is_signed_in_straight_away(client: Client) -> None:
    form = {"username": "alice", "password1": PASSWORD, "password2": PASSWORD}
    reply = client.post("/accounts/signup/", form, follow=True)
    assert reply.redirect_chain == [("/", 302)]
    assert "Signed in as <strong>alice</strong>" in reply.content.decode()
    assert get_user_model().objects.filter(username="alice").exists()


def test_sign_up_refuses_passwords_that_do_not_match(client: Client) -> None:
    form = {"username": "alice", "password1": PASSWORD, "password2": "other"}
    reply = client.post("/accounts/signup/", form)
    assert reply.status_code == 200
    assert "The two password fields didn\N{RIGHT SINGLE QUOTATION MARK}t match." in reply.content.decode()
    assert not get_user_model().objects.exists()


def test_sign_up_refuses_a_name_already_taken(client: Client) -> None:
    get_user_model().objects.create_user("alice", password=PASSWORD)
    form = {"username": "alice", "password1": PASSWORD, "password2": PASSWORD}
    reply = client.post("/accounts/signup/", form)
    assert "A user with that username already exists." in reply.content.decode()


def test_alice_logs_in_and_out(client: Client) -> None:
    get_user_model().objects.create_user("alice", password=PASSWORD)
    reply = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, follow=True)
    assert "Signed in as <strong>alice</strong>" in reply.content.decode()

    reply = client.post("/accounts/logout/", follow=True)
    page = reply.content.decode()
    assert reply.redirect_chain == [("/", 302)]
    assert "Signed in as" not in page
    assert 'href="/accounts/login/"' in page


def test_a_wrong_password_does_not_log_in(client: Client) -> None:
    get_user_model().objects.create_user("alice", password=PASSWORD)
    reply = client.post("/accounts/login/", {"username": "alice", "password": "not-it"})
    assert reply.status_code == 200
    assert "Please enter a correct username and password." in reply.content.decode()
    assert "_auth_user_id" not in client.session


def test_logging_out_takes_a_post_so_a_link_cannot_log_alice_out(client: Client) -> None:
    alice = get_user_model().objects.create_user("alice", password=PASSWORD)
    client.force_login(alice)
    assert client.get("/accounts/logout/").status_code == 405
    assert "Signed in as <strong>alice</strong>" in client.get("/").content.decode()


def test_thirty_wrong_passwords_and_then_the_right_one_does_not_log_in(client: Client) -> None:
    get_user_model().objects.create_user("mallory-target", password=PASSWORD)
    replies = [
        client.post("/accounts/login/", {"username": "mallory-target", "password": f"guess-{n}"})
        for n in range(30)
    ]
    assert replies[0].status_code == 200  # the form again, saying the password is wrong
    assert replies[-1].status_code == 429
    right = client.post("/accounts/login/", {"username": "mallory-target", "password": PASSWORD})
    assert right.status_code == 429
    page = right.content.decode()
    assert "Too many wrong passwords" in page and "Try again in" in page
    assert "_auth_user_id" not in client.session
    assert "Signed in as" not in client.get("/").content.decode()

    # Someone else, from elsewhere, logs in as usual to their own account and to this one.
    other = Client(REMOTE_ADDR="198.51.100.7")
    reply = other.post("/accounts/login/", {"username": "mallory-target", "password": PASSWORD})
    assert reply.status_code == 302
    assert "_auth_user_id" in other.session


def test_pages_say_where_their_scripts_may_come_from(client: Client) -> None:
    for path in ("/", "/accounts/login/", "/studio/demo/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
