# Beacon: `make run` serves site-template/, `make test` runs every test. Both install what is missing
# (apt-get as root, pip for the Python test tools), so they work on a fresh Debian machine.

SWIFT      ?= swift
PYTHON     ?= python3
APT_GET    := DEBIAN_FRONTEND=noninteractive apt-get
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT       ?= 8080

# Debian packages: building needs libinotifytools; tests add a browser, its driver and Redis.
BUILD_DEBS := libinotifytools0-dev
TEST_DEBS  := $(BUILD_DEBS) inotify-tools chromium chromium-driver redis-server
PIP_TEST   := selenium pytest

.PHONY: all build release run deps test-deps test test-browser fuzz bench clean

all: build

# Installs the Debian packages named in $(1) that are not installed yet (one apt-get update at most).
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) $(APT_GET) update -qq && $(SUDO) $(APT_GET) install -y -qq $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(BUILD_DEBS))

test-deps:
	$(call apt_install,$(TEST_DEBS))
	@$(PYTHON) -c "import selenium, pytest" 2>/dev/null || $(PYTHON) -m pip install -q $(PIP_TEST)

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: release
	.build/release/beacon serve site-template --port $(PORT)

# One debug build serves both: the test bundle and the beacon binary the browser tests drive.
# Serial: many suites start real servers and time-bounded waits; on two cores, running them side
# by side only made the waits race each other (65 s serial against 43 s in parallel).
test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel
	$(MAKE) test-browser

test-browser:
	BEACON_BIN=$(CURDIR)/.build/debug/beacon $(PYTHON) -m pytest -p no:benchmark -p no:cacheprovider Tests/browser -q

# Benchmarks side by side with nginx, python-livereload, inotifywait and Flask-SSE; installs what
# is missing and writes benchmarks/RESULTS.md. QUICK=1 for a short run, ONLY=static,latency,... for a subset.
bench: release test-deps
	BEACON_BIN=$(CURDIR)/.build/release/beacon $(PYTHON) benchmarks/run.py $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))
	$(if $(ONLY),,BEACON_BIN=$(CURDIR)/.build/release/beacon $(PYTHON) benchmarks/dom_latency.py $(if $(QUICK),--quick) --append benchmarks/RESULTS.md)

# The property tests (path resolution, ranges, SSE framing, publish bodies) with far more cases.
fuzz: deps
	$(SWIFT) build --build-tests
	BEACON_FUZZ_ITERATIONS=$${BEACON_FUZZ_ITERATIONS:-500000} $(SWIFT) test --skip-build --filter PropertyTests

clean:
	rm -rf .build .build-release
