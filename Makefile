# HubSync: `make demo` shows the agent at work, `make test` runs every test, `make bench` prints figures,
# `make bench-quick` the same table at 10k records in minutes; `make soak SECONDS=600` runs the ten-device soak under faults for longer (root; 30 s in `make test`).
SHELL := /bin/bash
# Each first runs the same set-up step, which installs missing Debian packages (quiet when none are).

SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
BUILD_FLAGS ?=
BIN_DEBUG = .build/debug
BIN_RELEASE = .build/release

SECONDS ?= 600
SEED ?=

.PHONY: setup build release demo test soak bench install install-systemd clean

setup:
	@bash scripts/setup.sh

build: setup
	$(SWIFT) build $(BUILD_FLAGS)

release: setup
	$(SWIFT) build -c release $(BUILD_FLAGS)

demo: build
	@HUBSYNC=$(BIN_DEBUG)/hubsync bash scripts/demo.sh

# The previous release is built first (cached in .build/compat/COMMIT), so its build does not run
# beside the tests; the compatibility test syncs with it. scripts/test.sh runs the unit, CLI and
# system suites one group after the other.
test: setup
	@SWIFT=$(SWIFT) bash scripts/build-previous.sh >/dev/null
	@SWIFT=$(SWIFT) bash scripts/test.sh $(BUILD_FLAGS)

soak: setup
	HUBSYNC_SOAK_SECONDS=$(SECONDS) HUBSYNC_SOAK_SEED=$(SEED) $(SWIFT) test $(BUILD_FLAGS) --filter SoakSystemTests

# `make bench`: every figure on 100,000 records (full sync also at 1k and 10k), medians of 3 runs, beside the anchors measured in
# the same run (Syncthing, restic, SQLite alone, zstd, BLAKE2b, loopback), with the plots drawn into
# BENCH_OUT (BENCHMARKS.md shows them). `make bench-quick`: the same table at 10,000 records in a few
# minutes (BENCH_TABLE: the figures BENCHMARKS.md lists). `make bench-million`: 1,000,000 records, one run (long; never part of `make test`).
BENCH_OUT ?= benchmarks
BENCH = $(BIN_RELEASE)/hubsync-bench --hubsync $(BIN_RELEASE)/hubsync --runs 3
BENCH_TABLE = --only import,open,list,writes,merges,sync,backup,raw
.PHONY: bench-quick bench-million
bench: release
	@bash scripts/setup.sh bench
	@$(BENCH) --sizes 1000,10000 --plots $(BENCH_OUT)

bench-quick: release
	@bash scripts/setup.sh bench
	@$(BENCH) --records 10000 $(BENCH_TABLE) --sizes 1000 --plots $(BENCH_OUT)-quick

bench-million: release
	@bash scripts/setup.sh bench
	@$(BIN_RELEASE)/hubsync-bench --hubsync $(BIN_RELEASE)/hubsync --million --skip-anchors --plots $(BENCH_OUT)-million

# `make install PREFIX=DIR`: the binary, its man page and shell completions, all made by the
# built binary from its own argument parser, and the systemd units (install-systemd).
# INSTALL_BIN=.build/debug installs a debug build.
PREFIX ?= /usr/local
INSTALL_BIN ?= $(BIN_RELEASE)
install: $(if $(filter $(BIN_RELEASE),$(INSTALL_BIN)),release,build)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 755 $(INSTALL_BIN)/hubsync $(DESTDIR)$(PREFIX)/bin/hubsync
	$(INSTALL_BIN)/hubsync man > $(DESTDIR)$(PREFIX)/share/man/man1/hubsync.1
	$(INSTALL_BIN)/hubsync --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/hubsync
	$(INSTALL_BIN)/hubsync --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_hubsync
	$(INSTALL_BIN)/hubsync --generate-completion-script fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/hubsync.fish
	@$(MAKE) --no-print-directory install-systemd PREFIX=$(PREFIX) DESTDIR=$(DESTDIR)

# The system and user units of examples/systemd, naming PREFIX/bin/hubsync, and the system
# user the system unit runs as (systemd-sysusers). Builds nothing.
install-systemd:
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/systemd/user $(DESTDIR)$(PREFIX)/lib/sysusers.d
	sed 's|/usr/local/bin/hubsync|$(PREFIX)/bin/hubsync|g' examples/systemd/hubsync.service > $(DESTDIR)$(PREFIX)/lib/systemd/system/hubsync.service
	sed 's|/usr/local/bin/hubsync|$(PREFIX)/bin/hubsync|g' examples/systemd/hubsync-user.service > $(DESTDIR)$(PREFIX)/lib/systemd/user/hubsync.service
	install -m 644 examples/systemd/hubsync.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/hubsync.conf
	chmod 644 $(DESTDIR)$(PREFIX)/lib/systemd/system/hubsync.service $(DESTDIR)$(PREFIX)/lib/systemd/user/hubsync.service

clean:
	rm -rf .build
