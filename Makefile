# Beacon: `make run` serves site-template/, `make test` runs every test. Both install what is missing
# (apt-get as root, pip for the Python test tools), so they work on a fresh Debian machine.

SWIFT      ?= swift
PYTHON     ?= python3
APT_GET    := DEBIAN_FRONTEND=noninteractive apt-get
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT       ?= 8080

# Debian packages: building needs libinotifytools; tests add a browser, its driver, Redis and nginx.
BUILD_DEBS := libinotifytools0-dev
TEST_DEBS  := $(BUILD_DEBS) inotify-tools chromium chromium-driver redis-server nghttp2-client libnss3-tools openssl curl nginx-light
PIP_TEST   := selenium pytest flask django mkdocs 'pyjwt[crypto]'

PREFIX     ?= /usr/local
DESTDIR    ?=
# The release binary links the Swift runtime statically: it runs where no Swift toolchain is.
# It skips the run-time exclusivity checks, in every module (SwiftNIO's and Hummingbird's
# maintainers build their benchmarks so): each access to a class's stored property or a
# buffer's storage that spans a call is recorded and looked up, about 15 % of the instructions
# of a request on the proxy route. Debug builds, which every test runs, keep them: an
# overlapping access still fails there.
RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked
DIST       := .build/dist

.PHONY: all build release run deps test-deps test test-browser test-dist dist install uninstall deb dist-check fuzz bench format clean

all: build

# Installs the Debian packages named in $(1) that are not installed yet (one apt-get update at most).
# As root, a policy-rc.d keeps their maintainer scripts from starting services meanwhile: nginx-light
# would start nginx on port 80, and fail the install where something already holds it.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  policy=""; \
	  if [ "$$(id -u)" = 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1; \
	  fi; \
	  $(SUDO) $(APT_GET) update -qq && $(SUDO) $(APT_GET) install -y -qq $$missing >/dev/null; status=$$?; \
	  if [ -n "$$policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	  exit $$status; \
	fi
endef

deps:
	$(call apt_install,$(BUILD_DEBS))

test-deps:
	$(call apt_install,$(TEST_DEBS))
	@$(PYTHON) -c "import selenium, pytest, flask, django, mkdocs, jwt, cryptography" 2>/dev/null || $(PYTHON) -m pip install -q $(PIP_TEST)

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build $(RELEASE_FLAGS)

# What an installation holds, staged once: the binary, its man page (swift-argument-parser's
# generate-manual plugin) and shell completions (the binary writes them).
dist: release
	rm -rf $(DIST) && mkdir -p $(DIST)/completions
	strip -o $(DIST)/beacon .build/release/beacon
	$(SWIFT) package generate-manual --configuration debug >/dev/null
	cp "$$(find .build/plugins -name beacon.1 -newer $(DIST)/beacon | head -n 1)" $(DIST)/beacon.1
	$(DIST)/beacon --generate-completion-script bash > $(DIST)/completions/beacon.bash
	$(DIST)/beacon --generate-completion-script zsh > $(DIST)/completions/_beacon
	$(DIST)/beacon --generate-completion-script fish > $(DIST)/completions/beacon.fish

# `make install [PREFIX=/usr/local] [DESTDIR=]`; `make uninstall` removes exactly these files.
INSTALLED = $(DESTDIR)$(PREFIX)/bin/beacon $(DESTDIR)$(PREFIX)/share/man/man1/beacon.1 \
	$(DESTDIR)$(PREFIX)/share/bash-completion/completions/beacon \
	$(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_beacon \
	$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/beacon.fish

install: dist
	$(call install_files,$(DESTDIR)$(PREFIX))

define install_files
	install -D -m 755 $(DIST)/beacon $(1)/bin/beacon
	install -D -m 644 $(DIST)/beacon.1 $(1)/share/man/man1/beacon.1
	install -D -m 644 $(DIST)/completions/beacon.bash $(1)/share/bash-completion/completions/beacon
	install -D -m 644 $(DIST)/completions/_beacon $(1)/share/zsh/vendor-completions/_beacon
	install -D -m 644 $(DIST)/completions/beacon.fish $(1)/share/fish/vendor_completions.d/beacon.fish
endef

uninstall:
	rm -f $(INSTALLED)

# beacon_VERSION_ARCH.deb: the same files under /usr. Besides libinotifytools it needs only what
# every Debian system has (the C and C++ runtime and zlib, which the static Swift runtime links).
deb: dist
	@version=$$($(DIST)/beacon --version); arch=$$(dpkg --print-architecture); \
	root=.build/deb/beacon_$${version}_$$arch; rm -rf .build/deb beacon_*.deb && mkdir -p $$root/DEBIAN; \
	$(MAKE) --no-print-directory install_into ROOT=$$root/usr; \
	printf '%s\n' "Package: beacon" "Version: $$version" "Architecture: $$arch" \
	  "Maintainer: Beacon developers <beacon@localhost>" "Depends: libc6, libgcc-s1, libstdc++6, zlib1g, libinotifytools0" \
	  "Section: web" "Priority: optional" "Installed-Size: $$(du -sk $$root/usr | cut -f1)" \
	  "Description: live-reload development server and server-push hub" \
	  " Serves a folder with every page live, and pushes events into open pages over SSE." > $$root/DEBIAN/control; \
	dpkg-deb --build --root-owner-group $$root beacon_$${version}_$$arch.deb >/dev/null && echo beacon_$${version}_$$arch.deb

install_into:
	$(call install_files,$(ROOT))

# The .deb on a machine that never saw Swift: a fresh Debian root (debootstrap, from Debian's
# packages), the .deb installed with apt-get, then Tests/dist/dist-check.sh inside it.
DIST_ROOT := .build/dist-root
DEBIAN_MIRROR ?= http://deb.debian.org/debian
dist-check: deb
	$(call apt_install,debootstrap)
	@[ -f $(DIST_ROOT)/etc/debian_version ] || debootstrap --variant=minbase bookworm $(DIST_ROOT) $(DEBIAN_MIRROR) >/dev/null
	cp beacon_*.deb Tests/dist/dist-check.sh $(DIST_ROOT)/tmp/
	cp /etc/resolv.conf $(DIST_ROOT)/etc/resolv.conf
	unshare -m --propagation private sh -c 'mount -t proc proc $(DIST_ROOT)/proc && mount --rbind /dev $(DIST_ROOT)/dev && \
	  chroot $(DIST_ROOT) sh -c "apt-get update -qq && apt-get install -y -qq ./tmp/beacon_*.deb >/dev/null" && \
	  chroot $(DIST_ROOT) /tmp/dist-check.sh'

# The installed binary with the Swift toolchain hidden: it must start, serve and push.
test-dist: dist
	rm -rf .build/stage && $(MAKE) --no-print-directory install_into ROOT=$(CURDIR)/.build/stage/usr
	BEACON_INSTALLED=$(CURDIR)/.build/stage/usr $(PYTHON) -m pytest -p no:cacheprovider Tests/dist -q

run: release
	.build/release/beacon serve site-template --port $(PORT)

# One debug build serves both: the test bundle and the beacon binary the browser tests drive.
# Serial: many suites start real servers and time-bounded waits; on two cores, running them side
# by side only made the waits race each other (65 s serial against 43 s in parallel).
test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel
	$(MAKE) test-browser
	$(MAKE) test-dist

test-browser:
	BEACON_BIN=$(CURDIR)/.build/debug/beacon $(PYTHON) -m pytest -p no:benchmark -p no:cacheprovider Tests/browser -q

# Benchmarks side by side with nginx, python-livereload, inotifywait and Flask-SSE; installs what
# is missing and writes benchmarks/RESULTS.md. QUICK=1 for a short run, ONLY=static,latency,... for a subset.
bench: release test-deps
	BEACON_BIN=$(CURDIR)/.build/release/beacon $(PYTHON) benchmarks/run.py $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))
	$(if $(ONLY),,BEACON_BIN=$(CURDIR)/.build/release/beacon $(PYTHON) benchmarks/dom_latency.py $(if $(QUICK),--quick) --append benchmarks/RESULTS.md)
	$(if $(ONLY),,BEACON_BIN=$(CURDIR)/.build/release/beacon $(PYTHON) benchmarks/dom_latency.py --css $(if $(QUICK),--quick) --append benchmarks/RESULTS.md)

# swift-format (part of the toolchain) with the rules in .swift-format, applied in place.
format:
	swift-format format -i -r --parallel Sources Tests Plugins Package.swift

# The property tests (path resolution, ranges, SSE framing, publish bodies) with far more cases.
fuzz: deps
	$(SWIFT) build --build-tests
	BEACON_FUZZ_ITERATIONS=$${BEACON_FUZZ_ITERATIONS:-500000} $(SWIFT) test --skip-build --filter PropertyTests

clean:
	rm -rf .build .build-release beacon_*.deb
