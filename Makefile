# CCTelegram suite — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv is installed into .tools/ when the machine has none; nothing else is needed up front.
UV_ON_PATH := $(shell command -v uv 2>/dev/null)
UV ?= $(if $(UV_ON_PATH),$(UV_ON_PATH),$(CURDIR)/.tools/bin/uv)
PYTEST_ARGS ?=

.PHONY: help install run test test-isolation test-fast lint format typecheck bench asyncapi clean images test-images dist test-dist

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	@echo "installing uv into .tools/ ..."
	@python3 -m venv $(CURDIR)/.tools && $(CURDIR)/.tools/bin/pip install --quiet uv

.venv/.synced: uv.lock pyproject.toml $(wildcard */*/pyproject.toml) | $(UV)
	$(UV) sync --all-packages --frozen
	@touch $@

install: .venv/.synced ## install every package of the workspace (uv sync --all-packages --frozen)

run: install ## start NATS, the five services and the Telegram sandbox (cctelegram up)
	$(UV) run --frozen cctelegram up

lint: install ## ruff check + format check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

format: install ## apply ruff formatting and safe fixes
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

typecheck: install ## mypy --strict over libs, services and tools
	$(UV) run --frozen mypy libs/common/src libs/testing/src services/*/src tools/*/src

# Each service's tests run only in a throwaway virtualenv holding that service alone
# (uv sync --package, ~2 s each from uv's cache): isolation is proved without a second run.
test: lint typecheck ## lint, type checks, the isolation check and the whole test suite
	$(UV) run --frozen python -m cctelegram_testing.isolation check
	@# pytest exits 5 when a selection (PYTEST_ARGS=-k ...) matches no test: not a failure.
	@# Everything but the services: each service's tests run below, in a venv holding only it.
	@# (Named paths, not --ignore: pytest never ignores a path that testpaths names.)
	$(UV) run --frozen pytest libs tools tests $(PYTEST_ARGS); status=$$?; [ $$status -eq 5 ] || [ $$status -eq 0 ] || exit $$status
	UV=$(UV) $(UV) run --frozen python -m cctelegram_testing.isolation run-all $(PYTEST_ARGS)

test-isolation: install ## each service installed alone in a throwaway venv, running its own tests
	$(UV) run --frozen python -m cctelegram_testing.isolation check
	UV=$(UV) $(UV) run --frozen python -m cctelegram_testing.isolation run-all $(PYTEST_ARGS)

test-fast: install ## the test suite without lint/typecheck, stopping at the first failure
	$(UV) run --frozen pytest -x $(PYTEST_ARGS); status=$$?; [ $$status -eq 5 ] && exit 0; exit $$status

bench: install ## run every benchmark in bench/ and print the figures
	@for script in bench/*.py; do echo "== $$script"; $(UV) run --frozen python $$script || exit 1; done

asyncapi: install ## write the AsyncAPI document of the NATS contract to docs/asyncapi.json
	$(UV) run --frozen python -m cctelegram_common.asyncapi docs/asyncapi.json

# A Docker engine: DOCKER_HOST's, the default one, or one started here (deploy/images/engine.sh:
# own socket, data root .cctelegram/docker, no bridge/iptables) and stopped afterwards.
WITH_ENGINE = set -e; eval "$$(deploy/images/engine.sh start)"; trap 'deploy/images/engine.sh stop' EXIT;

images: install ## build the images (5 services, sandbox, cli, NATS) and print their sizes
	@$(WITH_ENGINE) UV=$(UV) $(UV) run --frozen python deploy/images/build.py $(IMAGES)

# CCTG_IMAGE_FIGURES: where the test writes its figures (sizes, cold start, RSS) as JSON.
# CCTG_TEST_NATS=container: the root conftest's nats_url fixture runs the NATS image
# (tests/images/test_nats_fixture.py proves it; any test run may set it).
test-images: install ## build the images, then run the suite from them (testcontainers)
	@$(WITH_ENGINE) UV=$(UV) $(UV) run --frozen python deploy/images/build.py; \
	mkdir -p .cctelegram; \
	CCTG_TEST_IMAGES=1 CCTG_TEST_NATS=container TESTCONTAINERS_RYUK_DISABLED=true \
	CCTG_IMAGE_FIGURES=$${CCTG_IMAGE_FIGURES:-$(CURDIR)/.cctelegram/image-figures.json} \
	$(UV) run --frozen pytest tests/images -p no:cacheprovider $(PYTEST_ARGS)

dist: install ## wheels of every package + the `cctelegram` distribution + locked deps in dist/
	UV=$(UV) $(UV) run --frozen python deploy/package/build.py --out dist

test-dist: dist ## install cctelegram from dist/ alone (--no-index) into a fresh venv and run it
	CCTG_TEST_DIST=1 UV=$(UV) $(UV) run --frozen pytest tests/deploy/test_dist.py -p no:cacheprovider

clean: ## remove the local data dir and caches
	rm -rf .cctelegram .pytest_cache .mypy_cache .ruff_cache
