"""Settings for RouteOptimizer: every knob comes from the environment (or a .env file)."""

import secrets
from datetime import timedelta
from pathlib import Path

import environ

from routeoptimizer.database import database_roles, database_settings

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
DATA_DIR = Path(env("ROUTEOPTIMIZER_DATA_DIR", default=str(BASE_DIR / ".data"))).resolve()


def _development_secret_key() -> str:
    # Kept in the data directory so sessions survive restarts of the dev server.
    path = DATA_DIR / "dev-secret-key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


# No default secret outside DEBUG: Django refuses to serve requests with an empty key,
# while commands that never sign anything (migrate, validate_tenancy) still run.
SECRET_KEY = env("SECRET_KEY", default="") or (_development_secret_key() if DEBUG else "")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", ".localhost"])
# Origins (https://host) whose HTTPS POSTs the admin accepts when a proxy terminates TLS.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS in production (README, "Production"; .env.example) ---------------------------------
# Off by default so the quick start and the test suite speak plain HTTP; the documented
# production environment turns every one on, and `manage.py check --deploy` is clean with it
# (tests/test_production.py runs it).
# The header a TLS-terminating proxy sets, e.g. "HTTP_X_FORWARDED_PROTO,https": requests carrying
# it count as HTTPS. Only behind a proxy that overwrites it: a client can send it too.
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if len(_proxy_ssl_header) == 2 else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers check /health over plain HTTP: answered there, not redirected.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)

DATABASE_URL = env("DATABASE_URL", default="")
# True when no DATABASE_URL is set and the embedded PostgreSQL in DATA_DIR serves the project.
EMBEDDED_DATABASE = not DATABASE_URL
DATABASES = {
    "default": database_settings(DATABASE_URL, data_dir=DATA_DIR),
}
# Each request is one transaction: the current organization is put on it once (tenants.connection).
DATABASES["default"]["ATOMIC_REQUESTS"] = True
# The owner of the tables, for migrations and maintenance commands; unset, DATABASE_URL's role
# (tenants.W001 then warns that row level security does not bind the application).
MIGRATION_DATABASE_URL = env("MIGRATION_DATABASE_URL", default="")
# {"app": ..., "owner": ...}: the two logins to the one database (tenants.roles).
DATABASE_ROLES = database_roles(
    DATABASES["default"], migration_url=MIGRATION_DATABASE_URL, embedded=EMBEDDED_DATABASE
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# models.E034 limits index names to 30 characters for Oracle's sake; PostgreSQL allows 63 and
# the plan's names (idx_users_email_verification_token) are longer than 30.
SILENCED_SYSTEM_CHECKS = ["models.E034"]

# Organizations are served at <slug>.<ROUTEOPTIMIZER_BASE_DOMAIN> (tenants.middleware).
ROUTEOPTIMIZER_BASE_DOMAIN = env("ROUTEOPTIMIZER_BASE_DOMAIN", default="localhost")

# The default organization that adopts every legacy row (plan step M005).
ROUTEOPTIMIZER_OWNER_EMAIL = env("ROUTEOPTIMIZER_OWNER_EMAIL", default="brian@example.com")
ROUTEOPTIMIZER_OWNER_PASSWORD = env("ROUTEOPTIMIZER_OWNER_PASSWORD", default="")

INSTALLED_APPS = [
    # Project apps first: tenants overrides `migrate` to adopt legacy databases safely.
    "tenants",
    "accounts",
    "routing",
    "billing",
    "geocoding",
    # django.contrib.admin with input checked on every admin view (tenants.admin_site).
    "tenants.admin_site.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    # The /api/v1/ API (routeoptimizer.api_urls): DRF, its list filters and its OpenAPI schema.
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    # Sign-in throttling for the admin and POST /api/v1/auth/token (accounts.signin).
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The admin's static files from STATIC_ROOT (`collectstatic`, which `make serve` runs), under
    # gunicorn too: no web server needed for them.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # NUL bytes and lone surrogates in the path, query string or headers: 400 before any use.
    "routeoptimizer.middleware.RejectMalformedRequestMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # A fresh claim state per request (what PostgreSQL's row level security is told).
    "tenants.middleware.RequestClaimsMiddleware",
    # Writes the API's api_calls counts after the response, outside its transaction.
    "billing.meter.ApiCallMeterMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The request's organization (subdomain, X-Organization, primary), membership checked.
    "tenants.middleware.CurrentOrganizationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a locked-out sign-in into accounts.signin's 429.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: a locked-out account or address is refused before its password is checked;
# then sign-in through the narrow paths the application role has to the account tables (row
# level security hides other accounts and every password hash from it: accounts.backends).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.AccountBackend",
]

ROOT_URLCONF = "routeoptimizer.urls"
WSGI_APPLICATION = "routeoptimizer.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_USER_MODEL = "accounts.User"
# Sessions through functions that take the key's hash: the application role lists none.
SESSION_ENGINE = "accounts.sessions"
# The key of the organization claim PostgreSQL verifies (tenants.claims); unset, derived from
# SECRET_KEY. `migrate` (or `manage.py tenancy_key install`) stores it in the database.
ROUTEOPTIMIZER_TENANCY_KEY = env("ROUTEOPTIMIZER_TENANCY_KEY", default="")
# Argon2id for every new hash; bcrypt hashes from the old application still verify and are
# re-hashed with Argon2 on the next successful login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- client addresses and sign-in throttling -------------------------------------------------
# How many reverse proxies in front of the application append to X-Forwarded-For. 0: the socket
# address (REMOTE_ADDR) is the client's and X-Forwarded-For is ignored; N: the N-th entry from
# the right (routeoptimizer.client_address). Every per-client limit uses that one rule.
ROUTEOPTIMIZER_TRUSTED_PROXIES = env.int("ROUTEOPTIMIZER_TRUSTED_PROXIES", default=0)

# django-axes: failed sign-ins are counted in the database (shared by every worker), per account
# and, separately, per client address; either reaching the limit locks that sign-in out for the
# cool-off time, the right password included. Each new failure during a lockout restarts it.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = env.int("ROUTEOPTIMIZER_SIGNIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ROUTEOPTIMIZER_SIGNIN_LOCKOUT_MINUTES", default=15))
AXES_CLIENT_IP_CALLABLE = "routeoptimizer.client_address.client_address"
AXES_USERNAME_CALLABLE = "accounts.signin.signin_username"
AXES_LOCKOUT_CALLABLE = "accounts.signin.lockout_response"
# A success does not wipe the address's failures: one valid account must not reset the count of
# an address that is guessing other accounts' passwords.
AXES_RESET_ON_SUCCESS = False
# Lockouts are lifted with `manage.py axes_reset_username EMAIL` / `axes_reset_ip ADDRESS`; axes'
# own admin pages would list every organization's sign-ins to any staff with the permission.
AXES_ENABLE_ADMIN = False

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Gzipped copies made by collectstatic, served by whitenoise to clients that accept them.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")},
}

# The JSON API. Only bearer tokens (accounts.ApiToken) authenticate it: a token names its user
# and its organization, so every request has exactly one organization (tenants.api).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSON parser, bounded in size and depth (routeoptimizer.parsers).
    "DEFAULT_PARSER_CLASSES": ["routeoptimizer.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "routeoptimizer.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "routeoptimizer.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Request rates per client address (routeoptimizer.client_address, not X-Forwarded-For as
    # sent): POST /api/v1/auth/token on top of axes' lockouts, and the old clients' /api/customers.
    "DEFAULT_THROTTLE_RATES": {
        "auth_token": env("ROUTEOPTIMIZER_TOKEN_RATE", default="30/min"),
        "legacy_customers": env("ROUTEOPTIMIZER_LEGACY_API_RATE", default="60/min"),
    },
    "NUM_PROXIES": ROUTEOPTIMIZER_TRUSTED_PROXIES,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RouteOptimizer API",
    "DESCRIPTION": "Customers, drivers, routes and route stops of one organization: the one the "
    "bearer token was issued for (POST /api/v1/auth/token).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
}
# Days an API token stays valid; 0: until revoked.
ROUTEOPTIMIZER_API_TOKEN_DAYS = env.int("ROUTEOPTIMIZER_API_TOKEN_DAYS", default=90)

# Plans (billing.plans, billing.limits, billing.access, billing.meter): limits, the subscription
# status check and usage metering. Off only to measure what they cost (bench/plan_limits.py).
ROUTEOPTIMIZER_PLANS_ENFORCED = env.bool("ROUTEOPTIMIZER_PLANS_ENFORCED", default=True)
# How often each process writes its api_calls counts (seconds; 0: after every request).
ROUTEOPTIMIZER_API_CALLS_FLUSH_SECONDS = env.float(
    "ROUTEOPTIMIZER_API_CALLS_FLUSH_SECONDS", default=60
)
# The signing secret of the Stripe webhook endpoint (whsec_...); unset: every event is refused.
ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET = env("ROUTEOPTIMIZER_STRIPE_WEBHOOK_SECRET", default="")
# How old (or how far in the future) a signed webhook timestamp may be, in seconds.
ROUTEOPTIMIZER_STRIPE_WEBHOOK_TOLERANCE = env.int(
    "ROUTEOPTIMIZER_STRIPE_WEBHOOK_TOLERANCE", default=300
)
# The organization the unversioned /api/customers serves to callers without a token, as the
# single-tenant application did: on only for the cutover window (README, runbook step 5) while
# the old clients learn to send tokens. Empty (the default): that endpoint requires a token.
ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION = env("ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION", default="")

# Invitation emails (tenants.services.invitation_send). EMAIL_URL as django-environ reads it
# (smtp+tls://user:password@smtp.example.com:587); unset, emails are printed to the console.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="RouteOptimizer <noreply@localhost>")
