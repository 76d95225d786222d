# Local development stack (design.md §9). Included by the top-level Makefile;
# also usable directly: make -f deploy/local/stack.mk stack-up
WHARF_STACK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
# Including this file must not make stack-up the default goal.
wharf_stack_prev_goal := $(.DEFAULT_GOAL)

.PHONY: stack-up stack-down

stack-up:
	@bash $(WHARF_STACK_DIR)/stack-up.sh

stack-down:
	@bash $(WHARF_STACK_DIR)/stack-down.sh

.DEFAULT_GOAL := $(wharf_stack_prev_goal)
