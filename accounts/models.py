"""The user: email login (case-insensitive), Argon2id passwords, hashed one-time tokens.

The password hash is not a model field: the application role may not read `users.password_hash`
(issue 8). `User.password` reads it through `tenancy_password_hash()`, which answers only for the
transaction's own claimed user and the platform, and saving writes it through
`tenancy_set_password_hash()`, guarded in PostgreSQL (tenants.verification).
"""

import uuid
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.functions import RandomUUID
from django.db import connections, models
from django.db.models.functions import Lower, Now
from django.utils import timezone as django_timezone

from accounts.tokens import new_token, token_matches

PASSWORD_RESET_LIFETIME = timedelta(hours=2)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        """The account with this email. Row level security shows the application role only the
        accounts of its claim; sign-in looks the id up through tenancy_account_id() and reads the
        row as that account (accounts.backends)."""
        account = account_id_for_email(username, using=self._db)
        if account is None:
            raise self.model.DoesNotExist(f"no account with email {username!r}")
        return self.get(pk=account)

    def create_user(self, email, password=None, **fields):
        if not email:
            raise ValueError("a user needs an email address")
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)  # None gives an unusable password
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


def account_id_for_email(email: str, *, using: str | None = None):
    """The id of the account with this email (case-insensitive), or None; nothing else of it."""
    if not isinstance(email, str) or "\x00" in email:
        return None
    with connections[using or "default"].cursor() as cursor:
        cursor.execute("SELECT tenancy_account_id(%s)", [email])
        return cursor.fetchone()[0]


_UNUSABLE = "!"  # users.password_hash's DEFAULT (accounts.0003): an unusable password


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    email = models.EmailField(max_length=255, unique=True)
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")

    is_active = models.BooleanField(default=True, db_default=True)
    is_staff = models.BooleanField(
        default=False, db_default=False, help_text="May log into the admin."
    )
    email_verified_at = models.DateTimeField(null=True, blank=True)
    email_verification_token = models.CharField(  # noqa: DJ001 - NULL = no pending token
        max_length=100, null=True, blank=True, editable=False
    )
    password_reset_token = models.CharField(  # noqa: DJ001 - NULL = no pending token
        max_length=100, null=True, blank=True, editable=False
    )
    password_reset_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    last_login = models.DateTimeField(
        "last login", null=True, blank=True, db_column="last_login_at"
    )
    last_login_ip = models.GenericIPAddressField(null=True, blank=True)
    login_count = models.IntegerField(default=0, db_default=0)

    timezone = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001 - NULL = the organization's
    locale = models.CharField(max_length=10, default="en_US", db_default="en_US")

    created_at = models.DateTimeField(default=django_timezone.now, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        db_table = "users"
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="idx_users_email_lower"),
        ]
        indexes = [
            # Partial: only the few users with a pending token are indexed.
            models.Index(
                fields=["email_verification_token"],
                name="idx_users_email_verification_token",
                condition=models.Q(email_verification_token__isnull=False),
            ),
            models.Index(
                fields=["password_reset_token"],
                name="idx_users_password_reset_token",
                condition=models.Q(password_reset_token__isnull=False),
            ),
        ]

    def __str__(self):
        return self.email

    # --- the password hash, outside the ORM ---------------------------------------------------

    @property
    def password(self) -> str:
        if "_password_hash" not in self.__dict__:
            self.__dict__["_password_hash"] = self._stored_password_hash()
        return self.__dict__["_password_hash"]

    @password.setter
    def password(self, value: str) -> None:
        self.__dict__["_password_hash"] = value
        self.__dict__["_password_hash_changed"] = True

    def _stored_password_hash(self) -> str:
        if self._state.adding or self.pk is None:
            return _UNUSABLE
        with connections[self._state.db or "default"].cursor() as cursor:
            cursor.execute("SELECT tenancy_password_hash(%s)", [self.pk])
            row = cursor.fetchone()
        # Another account's hash is not ours to read: it verifies nothing.
        return row[0] if row and row[0] else _UNUSABLE

    def save(self, *args, update_fields=None, **kwargs):
        adding = self._state.adding
        changed = self.__dict__.pop("_password_hash_changed", False)
        if update_fields is not None:
            update_fields = [name for name in update_fields if name != "password"]
        super().save(*args, update_fields=update_fields, **kwargs)
        # A new account's DEFAULT is unusable already: only a real hash needs writing.
        if changed and not (adding and not self.has_usable_password()):
            with connections[self._state.db or "default"].cursor() as cursor:
                cursor.execute("SELECT tenancy_set_password_hash(%s, %s)", [self.pk, self.password])

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        if fields is not None and "password" in fields:
            fields = [name for name in fields if name != "password"]
            self.__dict__.pop("_password_hash", None)
            if not fields:
                return
        elif fields is None:
            self.__dict__.pop("_password_hash", None)
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)

    def get_full_name(self):
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def get_short_name(self):
        return self.first_name or self.email

    def issue_email_verification_token(self) -> str:
        token, self.email_verification_token = new_token()
        self.save(update_fields=["email_verification_token", "updated_at"])
        return token

    def verify_email(self, token: str) -> bool:
        if not token_matches(token, self.email_verification_token):
            return False
        self.email_verified_at = django_timezone.now()
        self.email_verification_token = None
        self.save(update_fields=["email_verified_at", "email_verification_token", "updated_at"])
        return True

    def issue_password_reset_token(self) -> str:
        token, self.password_reset_token = new_token()
        self.password_reset_expires_at = django_timezone.now() + PASSWORD_RESET_LIFETIME
        self.save(update_fields=["password_reset_token", "password_reset_expires_at", "updated_at"])
        return token

    def reset_password(self, token: str, new_password: str) -> bool:
        expired = (
            self.password_reset_expires_at is None
            or self.password_reset_expires_at < django_timezone.now()
        )
        if expired or not token_matches(token, self.password_reset_token):
            return False
        self.set_password(new_password)
        self.password_reset_token = None
        self.password_reset_expires_at = None
        self.save()
        return True


class ApiToken(models.Model):
    """A bearer token for the API, bound to one user in one organization; only its hash is kept.

    Not tenant-scoped on purpose: a request presents the token before any organization is known,
    so the lookup by hash must see every organization's tokens (like organization_users).
    """

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="api_tokens", db_index=False
    )
    organization = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        related_name="api_tokens",
        db_index=False,
    )
    # SHA-256 of the token (accounts.tokens.hash_token); the token itself is shown once.
    key_hash = models.CharField(max_length=64, editable=False)
    name = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(default=django_timezone.now, db_default=Now())
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "api_tokens"
        verbose_name = "API token"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["key_hash"], name="uq_api_tokens_key_hash"),
        ]
        indexes = [
            models.Index(fields=["user"], name="idx_api_tokens_user"),
            models.Index(fields=["organization"], name="idx_api_tokens_org"),
        ]

    def __str__(self):
        return self.name or f"token {str(self.id)[:8]}"

    def is_usable(self, now=None) -> bool:
        now = now or django_timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
