"""Sign-in against the account tables that the application role may not list (issue 8).

Django's ModelBackend looks the account up by email and then checks the password; row level
security shows the application role only the accounts of its claim, and the password hash only
of the claim's own user. So the lookup goes through `tenancy_account_id()` (an id, nothing
else), and the row and its hash are read as that account (`claim_user`). On success the request
goes on as that account (`set_claim_user`), so that Django's bookkeeping (last login, the
session) can write its own row.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from accounts.models import account_id_for_email
from tenants.claims import claim_user, set_claim_user


class AccountBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        model = get_user_model()
        if username is None:
            username = kwargs.get(model.USERNAME_FIELD)
        if username is None or password is None:
            return None
        account = account_id_for_email(username)
        if account is None:
            # As slow as a wrong password, so the answer's timing tells no account apart.
            model().set_password(password)
            return None
        with claim_user(account):
            try:
                user = model._default_manager.get(pk=account)
            except model.DoesNotExist:
                return None
            if not (user.check_password(password) and self.user_can_authenticate(user)):
                return None
        set_claim_user(user.pk)
        return user

    def get_user(self, user_id):
        with claim_user(user_id):
            user = super().get_user(user_id)
            if user is not None:
                user.password  # noqa: B018 - read while claimed: the session's hash check needs it
        return user
