# CloudBill: build, test and run the fleet. `make help` lists the targets.
SWIFT ?= swift
RELEASE_SCRATCH ?= .build-release

.PHONY: help deps build release test test-swift test-monitoring demo up down status bench clean

help:
	@echo "make demo     start the whole fleet natively and drive traffic; prints the URLs"
	@echo "make test     install what is missing, build, run every test"
	@echo "make up       start the fleet natively (no traffic);  make down  stop it"
	@echo "make status   what is running"
	@echo "make bench    benchmarks (release build), figures in docs/benchmarks.md"

deps:
	@scripts/install-deps

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --scratch-path $(RELEASE_SCRATCH)

test: deps test-swift test-monitoring

test-swift:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

test-monitoring:
	scripts/check-monitoring

up: deps
	scripts/stack up

down:
	scripts/stack down

status:
	scripts/stack status

demo: deps
	scripts/stack up
	scripts/demo-traffic start

bench: deps
	$(SWIFT) build -c release --scratch-path $(RELEASE_SCRATCH) --product cloudbill-bench
	$(RELEASE_SCRATCH)/release/cloudbill-bench instrumentation

clean:
	rm -rf .build $(RELEASE_SCRATCH)
