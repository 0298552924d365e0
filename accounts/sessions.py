"""A database session store the application role cannot list (issue 8).

Django's own `db` backend reads and writes `django_session` through the ORM, so any SQL on the
application connection could list every live session key and replay an admin's as a cookie.
Here the table is the owner's alone (tenants.verification revokes it from the application role)
and each operation is one SECURITY DEFINER function that takes the session's key hash: a session
is reached only by whoever holds its key. The table keeps SHA-256 of the key (its first 40 hex
digits, the column's width), never the key itself, so a dump or a backup holds no usable key.
`clearsessions` still works (clear_expired).
"""

from __future__ import annotations

import hashlib

from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.db import connection
from django.utils import timezone


def _digest(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


def _call(function: str, *params):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}({', '.join(['%s'] * len(params))})", list(params))
        return cursor.fetchone()[0]


class SessionStore(SessionBase):
    def load(self):
        if self.session_key is None or not self._valid_key(self.session_key):
            self._session_key = None
            return {}
        data = _call("tenancy_session_load", _digest(self.session_key))
        if data is None:
            self._session_key = None
            return {}
        return self.decode(data)

    @staticmethod
    def _valid_key(key: str) -> bool:
        return key.isascii() and key.isalnum() and len(key) <= 40

    def exists(self, session_key):
        return self._valid_key(session_key) and _call(
            "tenancy_session_exists", _digest(session_key)
        )

    def create(self):
        while True:
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue  # a key that exists already: draw another
            self.modified = True
            return

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        data = self.encode(self._get_session(no_load=must_create))
        saved = _call(
            "tenancy_session_save",
            _digest(self.session_key),
            data,
            self.get_expiry_date(),
            must_create,
        )
        if must_create and not saved:
            raise CreateError
        if not saved:
            raise UpdateError

    def delete(self, session_key=None):
        session_key = session_key or self.session_key
        if session_key is None or not self._valid_key(session_key):
            return
        _call("tenancy_session_delete", _digest(session_key))

    @classmethod
    def clear_expired(cls):
        _call("tenancy_session_clear_expired")

    def get_expiry_date(self, **kwargs):
        expiry = super().get_expiry_date(**kwargs)
        return expiry if timezone.is_aware(expiry) else timezone.make_aware(expiry)
