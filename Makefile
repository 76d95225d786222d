# wharf — the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
export GOFLAGS ?= -mod=readonly

include deploy/local/stack.mk

.PHONY: build demo test unit bench fuzz chaos lint

build:
	$(GO) build -o .stack/bin/wharf ./cmd/wharf

## demo: wharf's main job end to end on the local stack
demo:
	@bash deploy/local/demo.sh

## test: every test, against the local stack (a test that needs it fails when it is missing)
test: stack-up
	$(GO) vet ./...
	WHARF_REQUIRE_STACK=1 $(GO) test -race -count=1 -timeout 30m ./...

## unit: the tests that need no stack
unit:
	$(GO) test -race -count=1 -short ./...

## bench: the benchmarks of the README, as a table and JSON lines
bench: stack-up
	@bash deploy/local/bench.sh
