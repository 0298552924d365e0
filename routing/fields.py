"""Model fields for the legacy tables' column conventions."""

from datetime import UTC

from django.db import models
from django.utils import timezone


class UTCDateTimeField(models.DateTimeField):
    """A `timestamp without time zone` column holding UTC wall time, as the legacy tables do.

    Python sees aware datetimes in UTC, like every other DateTimeField under USE_TZ, while the
    column keeps the type the old application reads and writes.
    """

    def db_type(self, connection):
        return "timestamp"

    def from_db_value(self, value, expression, connection):
        if value is not None and timezone.is_naive(value):
            return value.replace(tzinfo=UTC)
        return value

    def get_db_prep_value(self, value, connection, prepared=False):
        value = super().get_db_prep_value(value, connection, prepared)
        if value is not None and timezone.is_aware(value):
            return value.astimezone(UTC).replace(tzinfo=None)
        return value
