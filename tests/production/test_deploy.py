"""Production as documented: `check --deploy` is clean with .env.example's production lines, and
gunicorn serves the application with them (HTTPS settings, the admin's static files, /health
when the database is down)."""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.support import PROJECT_DIR, run_manage

PRODUCTION_BLOCK = "# --- Production"


def documented_production_environment() -> dict[str, str]:
    """The `# NAME=value` lines of .env.example's production section."""
    text = (PROJECT_DIR / ".env.example").read_text()
    assert PRODUCTION_BLOCK in text, ".env.example lost its production section"
    section = text.split(PRODUCTION_BLOCK, 1)[1]
    lines = (re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=(.*)", line) for line in section.splitlines())
    return {match[1]: match[2] for match in lines if match}


def closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


@pytest.fixture
def production(tmp_path):
    """The documented environment, with a real key and nothing from the developer's own."""
    documented = documented_production_environment()
    assert {"DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"} <= set(
        documented
    )
    return {
        **documented,
        "SECRET_KEY": secrets.token_urlsafe(50),
        # Nothing listens there: neither the deploy check nor /health's 503 needs a database.
        "DATABASE_URL": f"postgresql://routeoptimizer_app@127.0.0.1:{closed_port()}/routeoptimizer",
        "MIGRATION_DATABASE_URL": "",
        "ROUTEOPTIMIZER_DATA_DIR": str(tmp_path),
    }


def test_check_deploy_reports_nothing_with_the_documented_production_environment(production):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        database_url=production["DATABASE_URL"],
        env=production,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output


def get(url: str, **headers):
    # The documented ALLOWED_HOSTS: any other Host is refused.
    request = urllib.request.Request(url, headers={"Host": "routeoptimizer.example.com", **headers})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def gunicorn(production, tmp_path):
    run_manage(
        "collectstatic",
        "--noinput",
        "--verbosity",
        "0",
        database_url=production["DATABASE_URL"],
        env=production,
    )
    port = closed_port()
    environment = {**os.environ, **production, "DJANGO_SETTINGS_MODULE": "routeoptimizer.settings"}
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "routeoptimizer.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--no-control-socket",  # the default is one per user: concurrent runs would share it
        ],
        cwd=PROJECT_DIR,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/health")
                break
            except (ConnectionError, urllib.error.URLError):
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    output = (tmp_path / "gunicorn.log").read_text()
                    raise AssertionError(f"gunicorn did not start:\n{output}") from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_under_gunicorn_health_is_503_one_json_line_when_the_database_is_down(gunicorn):
    status, headers, body = get(f"{gunicorn}/health")

    assert status == 503
    assert headers["Content-Type"] == "application/json"
    assert body.count(b"\n") == 0
    assert (
        body
        == b'{"status": "unavailable", "error": "the database does not answer; see the server log"}'
    )
    assert b"127.0.0.1" not in body and b"PostgreSQL" not in body


def test_under_gunicorn_https_is_enforced_and_the_admin_static_files_are_served(gunicorn):
    redirected, headers, _ = get(f"{gunicorn}/admin/login/")
    assert redirected == 301
    assert headers["Location"].startswith("https://")

    status, headers, body = get(
        f"{gunicorn}/static/admin/css/base.css", **{"X-Forwarded-Proto": "https"}
    )
    assert status == 200
    assert b"body" in body
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
