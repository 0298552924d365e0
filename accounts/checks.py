"""System checks: the password hashers' libraries must be importable at start-up.

Django's hashers import argon2 and bcrypt only on first use, so a missing library would
otherwise surface as a failed login long after deployment.
"""

import importlib

from django.conf import settings
from django.core import checks

HASHER_LIBRARIES = {"Argon2": "argon2", "BCrypt": "bcrypt"}


@checks.register(checks.Tags.security)
def check_password_hasher_libraries(app_configs=None, **kwargs):
    errors = []
    for hasher in settings.PASSWORD_HASHERS:
        for marker, module in HASHER_LIBRARIES.items():
            if marker in hasher.rsplit(".", 1)[-1]:
                try:
                    importlib.import_module(module)
                except ImportError:
                    errors.append(
                        checks.Error(
                            f"{hasher} is configured but the {module!r} library is not installed.",
                            hint="pip install -e . (it installs argon2-cffi and bcrypt)",
                            id="accounts.E001",
                        )
                    )
    return errors
