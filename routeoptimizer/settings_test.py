"""Settings for the test suite: the real ones, with a fixed key and a fast first hasher."""

from routeoptimizer.settings import *  # noqa: F403
from routeoptimizer.settings import PASSWORD_HASHERS

SECRET_KEY = "test-only-secret-key-not-for-production"
DEBUG = False
# MD5 only makes the many throwaway users of the suite cheap to create; the real hashers
# stay listed so stored Argon2 and bcrypt hashes still verify (tests/accounts covers them).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
# The billing webhook's signing secret: tests sign their own events with it (billing.webhooks).
ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET = "whsec_test_only_not_for_production"
