# HubSync: `make demo` shows the agent at work, `make test` runs every test, `make bench` prints figures.
SHELL := /bin/bash
# Each first runs the same set-up step, which installs missing Debian packages (quiet when none are).

SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
BUILD_FLAGS ?=
BIN_DEBUG = .build/debug
BIN_RELEASE = .build/release

.PHONY: setup build release demo test bench clean

setup:
	@bash scripts/setup.sh

build: setup
	$(SWIFT) build $(BUILD_FLAGS)

release: setup
	$(SWIFT) build -c release $(BUILD_FLAGS)

demo: build
	@HUBSYNC=$(BIN_DEBUG)/hubsync bash scripts/demo.sh

test: setup
	$(SWIFT) test $(BUILD_FLAGS)

bench: release
	@bash scripts/setup.sh bench
	@$(BIN_RELEASE)/hubsync-bench --hubsync $(BIN_RELEASE)/hubsync

clean:
	rm -rf .build
