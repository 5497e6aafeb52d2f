# The README's commands. Python 3.11+ and make are all a fresh machine needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# The port also makes the public address printed in payment links (SITE_URL's default).
export PORT

.PHONY: run test lint fmt serve bench venv setup messages clean admin-password

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# Development run: SQLite, demo data, admin user, web server + task worker (Ctrl-C stops both).
run: export DEBUG = 1
run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) manage.py load_demo_data
	$(PY) manage.py setup_schedules
	$(PY) manage.py build_feed || true
	# Creates the user admin if missing, then prints the addresses and login once it is up.
	$(PY) manage.py rundev 127.0.0.1:$(PORT)

# A new password for the user admin (printed once; ADMIN_PASSWORD sets a chosen one) and
# its login locks lifted.
admin-password: export DEBUG ?= 1
admin-password: venv
	$(PY) manage.py ensure_admin --reset

# Production: PostgreSQL (DATABASE_URL) and Redis (Q_BROKER=redis, REDIS_URL) from .env;
# gunicorn for the web and the task worker (deploy/ has systemd units for both). Ctrl-C stops
# both; the worker (run_worker) lets its tasks in flight finish.
serve: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) manage.py collectstatic --noinput
	$(PY) manage.py setup_schedules
	$(PY) manage.py run_worker & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(VENV)/bin/gunicorn backoffice.wsgi --bind 127.0.0.1:$(PORT) --workers 3

test: venv
	$(VENV)/bin/pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

messages: venv
	DEBUG=1 $(PY) manage.py makemessages -l ru --ignore=.venv --ignore=bench --ignore=tests
	DEBUG=1 $(PY) manage.py compilemessages --ignore=.venv

bench: venv
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench} $(PY) bench/sync_catalog.py
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench} $(PY) bench/build_feed.py
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench} $(PY) bench/two_suppliers.py
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench} $(PY) bench/import_orders.py
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench} $(PY) bench/import_pricelist.py
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench} $(PY) bench/webhook_load.py
	$(PY) bench/market_budget.py
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench} $(PY) bench/supplier_budget.py
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench} $(PY) bench/payment_poller.py

clean:
	rm -rf $(VENV) db.sqlite3* media logs/*.log
