# keygate: the commands a newcomer can guess. Every target installs what it needs first.
SHELL := /bin/bash
NPM_STAMP := node_modules/.keygate-installed

.PHONY: setup services dev test check build bench fuzz clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	npx tap build
	@touch $(NPM_STAMP)

setup: $(NPM_STAMP) ## install dependencies (npm ci) and build the test runner

services: ## install the Debian packages the tests start themselves (clickhouse-server)
	scripts/install-clickhouse.sh

dev: setup ## start the whole system on one machine with embedded defaults
	npx keygate dev $(ARGS)

test: setup ## run the test suite (MariaDB and Redis tests run when reachable; required with CI=true)
	npx tap

check: setup ## type check (tsc --noEmit) and lint
	npx tsc --noEmit -p .
	npx node scripts/lint.ts

build: setup ## emit JS + .d.ts of the published package (keygate/proxy) into dist/ (tsconfig.build.json)
	npm run build

bench: setup ## run the proxy benchmarks in bench/ (ARGS=--all: then every other bench/*.ts too)
	npx node bench/run.ts $(ARGS)

fuzz: setup ## run every fuzz target for a bounded time
	npx node fuzz/run.ts

clean: ## remove installed dependencies, test output and local data
	rm -rf node_modules .tap .keygate bench/results dist
