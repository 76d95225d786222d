# wharf — the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -mod=readonly

include deploy/local/stack.mk

.PHONY: build demo demo-backfill test unit bench bench-backfill fuzz chaos lint

build:
	$(GO) build -o .stack/bin/wharf ./cmd/wharf

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
FUZZ_TARGETS := schema:FuzzDecode schema:FuzzQuickCheck schema:FuzzFlatten schema:FuzzQuoteIdent ingest:FuzzRawDocument
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t#*:}; echo "== $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./$$pkg; \
	done

## bench: the streaming benchmarks of the README, as a table and JSON lines
bench: stack-up
	@bash deploy/local/bench.sh

## bench-backfill: the backfill benchmarks of the README (200,000 documents, then 2,000,000 for RSS)
bench-backfill: stack-up
	@bash deploy/local/bench-backfill.sh
