"""GET /health: {"status": "ok"} when PostgreSQL answers, and nothing more for anyone (the 503
when it does not answer: tests/production/test_deploy.py, under gunicorn)."""

import pytest

pytestmark = pytest.mark.django_db


def test_health_is_ok_and_reveals_no_versions(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")
    assert "version" not in response.content.decode().lower()


def test_health_is_answered_over_plain_http_when_https_is_enforced(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/health").status_code == 200
    assert client.get("/api/v1/customers/").status_code == 301
