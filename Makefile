# The only entry points a newcomer needs: demo, test, run, bench; serve in production (README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# The quick start runs with DEBUG on (a generated development key); production sets SECRET_KEY.
export DEBUG ?= 1

.PHONY: install demo test run serve bench lint stop-db
# make serve: where gunicorn listens and how many worker processes it runs.
BIND ?= 127.0.0.1:8000
WORKERS ?= 3

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "RouteOptimizer needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/.installed

# The demo is a cutover window: the old clients' /api/customers answers without a token for the
# sample's organization. Production leaves it off unless the runbook's step 5 turns it on.
demo run: export ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION ?= demo

demo: install
	$(PY) manage.py load_legacy_sample --reset
	$(PY) manage.py migrate
	$(PY) manage.py validate_tenancy
	@echo
	@echo "The sample legacy database is migrated and validated. To open the admin:"
	@echo "  $(PY) manage.py changepassword $${ROUTEOPTIMIZER_OWNER_EMAIL:-brian@example.com}"
	@echo "  make run     # then open http://127.0.0.1:7007/admin/"
	@echo "make run serves the old clients' /api/customers without a token for organization"
	@echo "'$$ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION' (ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION, the cutover"
	@echo "window); turn it off (ROUTEOPTIMIZER_LEGACY_API_ORGANIZATION= make run) once every old client"
	@echo "sends a bearer token."

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

run: install
	$(PY) manage.py runserver 127.0.0.1:7007

# Production: DEBUG off whatever the environment says, the settings from the environment or .env
# (README, "Production"). Django's deployment check prints what is still missing first; the
# admin's static files are collected for whitenoise to serve.
serve: export DEBUG = 0
serve: install
	$(PY) manage.py check --deploy
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(BIN)/gunicorn routeoptimizer.wsgi:application --bind $(BIND) --workers $(WORKERS) \
	  --access-logfile -

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(PY) bench/migrate_at_scale.py

stop-db: install
	$(PY) manage.py embedded_postgres stop
