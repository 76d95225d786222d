# wharf — the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -mod=readonly

include deploy/local/stack.mk

.PHONY: build image demo demo-backfill test unit bench bench-backfill fuzz chaos lint

build:
	$(GO) build -o .stack/bin/wharf ./cmd/wharf

## image: the container image (deploy/Dockerfile) for PLATFORM with the schema file TABLES, tagged wharf:VERSION.
## With a running docker or podman engine (CONTAINER_BUILDER=…) it builds the Dockerfile; without one it builds
## the same image offline (cmd/wharf-image: the static binary and the final stage's files and configuration on an
## empty base) into IMAGE_OUT, for docker load or crane push. Either way it prints the image's digest.
PLATFORM ?= linux/amd64
TABLES ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE_OUT ?= .stack/image/wharf-$(VERSION).tar
CONTAINER_BUILDER ?= $(shell for b in docker podman; do command -v $$b >/dev/null 2>&1 && $$b info >/dev/null 2>&1 && { echo $$b; break; }; done)
image:
	@if [ -z "$(TABLES)" ]; then echo "make image: TABLES=path/to/tables.yaml is required (the image has no default schema; serve refuses to start without one)" >&2; exit 2; fi
	@if [ -n "$(CONTAINER_BUILDER)" ]; then \
		$(CONTAINER_BUILDER) build -f deploy/Dockerfile --platform $(PLATFORM) \
			--build-arg TABLES=$(TABLES) --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) \
			-t wharf:$(VERSION) . && $(CONTAINER_BUILDER) image inspect --format '{{.Id}}' wharf:$(VERSION); \
	else \
		echo "make image: no docker or podman engine runs here: building the image offline (cmd/wharf-image)" >&2; \
		mkdir -p $(dir $(IMAGE_OUT)) && \
		$(GO) run ./cmd/wharf-image -tables $(TABLES) -platform $(PLATFORM) -version $(VERSION) -commit $(COMMIT) -o $(IMAGE_OUT); \
	fi

## demo: wharf's main job end to end on the local stack
demo:
	@bash deploy/local/demo.sh

## demo-backfill: three years of Mongo history (300,000 documents) backfilled into the warehouse, then monthly active users
demo-backfill:
	@bash deploy/local/demo-backfill.sh

## test: every test, against the local stack (a test that needs it fails when it is missing)
test: stack-up
	$(GO) vet ./...
	@bash deploy/local/chromium.sh
	@rm -f .stack/chaos-short-*.txt .stack/outage-short-*.txt
	WHARF_REQUIRE_STACK=1 $(GO) test -race -count=1 -timeout 30m ./...
	@cat .stack/chaos-short-matrix.txt .stack/chaos-short-concurrent.txt
	@awk 'FNR > 1 || NR == 1' .stack/outage-short-*.txt

## unit: the tests that need no stack
unit:
	$(GO) test -race -count=1 -short ./...

## chaos: the full fault matrix (SIGKILL at every fault point, eight runs each), the concurrency test,
## and the outages (S3, Mongo, warehouse each cut for WHARF_OUTAGE, 60s by default; WHARF_OUTAGE_MODE=down|blackhole|reset)
chaos: stack-up
	WHARF_REQUIRE_STACK=1 WHARF_CHAOS=full $(GO) test -run 'TestChaos|TestOutage' -timeout 60m -count=1 -v ./cmd/wharf/

## fuzz: every fuzz target for FUZZTIME each (crashers are kept under the package's testdata/fuzz/)
FUZZTIME ?= 60s
FUZZ_TARGETS := schema:FuzzDecode schema:FuzzTape schema:FuzzDifferential schema:FuzzRFC3339 schema:FuzzFlatten schema:FuzzQuoteIdent ingest:FuzzRawDocument
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; echo "== $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./$$pkg; \
	done

## bench: the streaming benchmarks of the README (cpu, e2e, bare, rss, fresh, latency), as a table and JSON lines;
##        BENCH_ONLY=latency (or other phases) runs some; knobs in deploy/local/bench.sh
bench: stack-up
	@bash deploy/local/bench.sh

## bench-backfill: the backfill benchmarks of the README (200,000 documents, then 2,000,000 for RSS)
bench-backfill: stack-up
	@bash deploy/local/bench-backfill.sh
