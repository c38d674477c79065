# CloudBill: build, test and run the fleet. `make help` lists the targets.
SWIFT ?= swift
RELEASE_SCRATCH ?= .build-release

.PHONY: help deps build release test test-swift test-monitoring test-stack test-contract test-hardening test-ha test-kubernetes test-tour tour demo up down status snapshot bench clean

help:
	@echo "make demo     start the whole fleet natively and drive traffic; prints the URLs"
	@echo "make test     install what is missing, build, run every test"
	@echo "make up       start the fleet natively (no traffic);  make down  stop it"
	@echo "make status   what is running"
	@echo "make snapshot the dashboards over the last 30 minutes as HTML in reports/snapshots (RANGE=2h)"
	@echo "make bench    benchmarks (release build), figures in docs/benchmarks.md"
	@echo "make tour     the alert tour: every alert induced on the native fleet (SCALE=30: 30x faster; SCALE=1: real time)"

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --scratch-path $(RELEASE_SCRATCH)

# Every suite below (scripts/test-all): the Swift build with, meanwhile, the suites that need
# no binary (monitoring, kubernetes, the contract test's venv); then one at a time the Swift
# suites, stack, contract, hardening, HA and the tour. Ends with each stage's time; a failed
# stage does not stop the next ones (a failed build does). Logs of the background suites
# in .run-tests/.
test: deps
	SWIFT="$(SWIFT)" scripts/test-all

# Suites run one at a time: several measure latency on this process's own event loops
# (the saturated pool must not slow them), which parallel suites on two cores would distort.
test-swift:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

test-monitoring:
	scripts/check-monitoring

# deploy/kubernetes validated offline: kustomize renders, Kubernetes and Operator schemas,
# rules extracted back pass promtool, checkov (the first run creates .venv-kubernetes from
# PyPI; about 45 s warm).
test-kubernetes:
	scripts/check-kubernetes

# The stack test runs the debug binaries test-swift built, so `make test` builds once.
test-stack:
	CLOUDBILL_DEMO=1 CLOUDBILL_FAULTS=on CLOUDBILL_SKIP_BUILD=1 CLOUDBILL_BIN_DIR=$(CURDIR)/.build/debug scripts/test-stack

# docs/openapi.yaml against the real fleet: Schemathesis (pinned, in .venv-contract), every
# phase and check, fixed seed, schemathesis.toml (under a minute).
test-contract:
	CLOUDBILL_SKIP_BUILD=1 CLOUDBILL_BIN_DIR=$(CURDIR)/.build/debug scripts/test-contract

# The security suite and crash drills against the real fleet, outside demo mode (about 2 minutes).
test-hardening:
	CLOUDBILL_SKIP_BUILD=1 CLOUDBILL_BIN_DIR=$(CURDIR)/.build/debug scripts/test-hardening

# The HA monitoring (CLOUDBILL_HA=1 scripts/stack up: two Prometheus replicas, an Alertmanager
# cluster of two, VictoriaMetrics) at 1/30 time: one page per alert, also with one of each
# stopped; remote write equal to Prometheus (about 3 minutes).
test-ha:
	CLOUDBILL_SKIP_BUILD=1 CLOUDBILL_BIN_DIR=$(CURDIR)/.build/debug scripts/test-ha

# The alert tour at 1/30 time on the debug binaries test-swift built (1145 s on a fresh clone,
# every alert rule, three scenarios run again; scenarios whose alerts are disjoint run at the
# same time); a scenario that passes only at its retry is reported as flaky;
# its report stays in .run-tour/report.
test-tour:
	CLOUDBILL_SKIP_BUILD=1 CLOUDBILL_BIN_DIR=$(CURDIR)/.build/debug scripts/tour --scale 30

# The alert tour on release binaries; writes docs/alert-tour.md. SCALE=1: real durations (hours).
SCALE ?= 30
tour: deps
	scripts/tour --scale $(SCALE) --markdown docs/alert-tour.md --screenshots docs/images

# Without demo mode: secrets are generated for the run folder (.run/fleet.env), faults are off.
up: deps
	scripts/stack up

down:
	scripts/demo-traffic stop
	scripts/stack down

status:
	scripts/stack status

# Demo mode, said so in the services' logs: the published demo secrets, the fault API on.
demo: deps
	CLOUDBILL_DEMO=1 CLOUDBILL_FAULTS=on scripts/stack up
	scripts/demo-traffic start
	@echo "The addresses above again: scripts/stack urls.  Stop everything with: make down"

# The request path, storage and instrumentation next to bare Hummingbird, wrk, pgbench and
# redis-benchmark in one run (scripts/bench --help); figures in docs/benchmarks.md. It runs
# the fleet from .run-bench on the documented ports: stop a running stack first (make down).
bench: deps
	scripts/install-deps --with-load-tools
	scripts/bench

# The provisioned Grafana dashboards over the last 30 minutes of the running stack's
# Prometheus, as self-contained HTML in reports/snapshots/ (scripts/snapshot --help).
snapshot:
	scripts/snapshot --from now-$(or $(RANGE),30m)

clean:
	rm -rf .build $(RELEASE_SCRATCH)
