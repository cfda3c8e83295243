# The README's two commands: `make demo` runs the product, `make test` runs the tests.
.PHONY: demo test lint bench-proxy bench-attribution install

install:
	./scripts/bootstrap

demo: install
	.venv/bin/finops up --demo

test: install
	./scripts/ensure-services
	./scripts/install-system-packages
	.venv/bin/python -m ruff check finops dashboards tests benchmarks
	.venv/bin/python -m mypy finops dashboards
	.venv/bin/python -m pytest -q

lint: install
	.venv/bin/python -m ruff check finops dashboards tests benchmarks
	.venv/bin/python -m mypy finops dashboards

bench-proxy: install
	./scripts/ensure-services
	.venv/bin/python benchmarks/bench_proxy.py

bench-attribution: install
	.venv/bin/python benchmarks/bench_attribution.py
