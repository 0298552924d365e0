"""The user model: Argon2id for new passwords, bcrypt accepted and upgraded, hashed tokens."""

from datetime import timedelta

import bcrypt
import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import check_password
from django.db import IntegrityError
from django.test import RequestFactory, override_settings
from django.utils import timezone

from accounts.models import User
from accounts.tokens import hash_token
from routeoptimizer.settings import PASSWORD_HASHERS as PRODUCTION_HASHERS

pytestmark = pytest.mark.django_db

production_hashers = override_settings(PASSWORD_HASHERS=PRODUCTION_HASHERS)


def sign_in(**credentials):
    # Every sign-in is an HTTP request's: django-axes (first backend) needs it to count failures.
    return authenticate(RequestFactory().post("/admin/login/"), **credentials)


@production_hashers
def test_new_passwords_are_hashed_with_argon2id():
    user = User.objects.create_user("new@example.com", "correct horse battery")

    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password("correct horse battery")
    assert not user.check_password("wrong")


@production_hashers
def test_bcrypt_hash_from_the_old_application_verifies_and_is_upgraded_on_login():
    legacy_hash = bcrypt.hashpw(b"old password", bcrypt.gensalt(rounds=4)).decode()
    user = User.objects.create(email="legacy@example.com", password=f"bcrypt${legacy_hash}")

    assert check_password("old password", user.password)
    authenticated = sign_in(email="legacy@example.com", password="old password")

    assert authenticated == user
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$"), "re-hashed with Argon2 on login"
    assert user.check_password("old password")


def test_email_is_unique_whatever_its_case():
    User.objects.create_user("Dana@Example.com")

    with pytest.raises(IntegrityError):
        User.objects.create_user("dana@EXAMPLE.com")


def test_login_email_is_case_insensitive():
    User.objects.create_user("Casey@Example.com", "pw-for-casey-123")

    assert sign_in(email="casey@example.COM", password="pw-for-casey-123") is not None


def test_user_without_password_cannot_log_in():
    user = User.objects.create_user("nopass@example.com")

    assert not user.has_usable_password()
    assert sign_in(email="nopass@example.com", password="") is None


def test_verification_token_is_stored_only_as_its_hash():
    user = User.objects.create_user("verify@example.com")

    token = user.issue_email_verification_token()

    user.refresh_from_db()
    assert user.email_verification_token == hash_token(token)
    assert token not in user.email_verification_token
    assert not user.verify_email("not-the-token")
    assert user.verify_email(token)
    user.refresh_from_db()
    assert user.email_verified_at is not None
    assert user.email_verification_token is None


def test_password_reset_token_is_hashed_single_use_and_expires():
    user = User.objects.create_user("reset@example.com", "old-password-123")
    token = user.issue_password_reset_token()
    user.refresh_from_db()
    assert user.password_reset_token == hash_token(token)

    assert user.reset_password(token, "new-password-456")
    assert user.check_password("new-password-456")
    assert not user.reset_password(token, "again-789"), "a token works once"

    expired = user.issue_password_reset_token()
    user.password_reset_expires_at = timezone.now() - timedelta(seconds=1)
    user.save()
    assert not user.reset_password(expired, "too-late-000")
