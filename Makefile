# Every entry point of Nostr Spaces core. `make help` lists them.

CARGO      ?= cargo
MVN        ?= mvn
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
PROFILE_DIR = $(TARGET_DIR)/debug
LIB         = $(PROFILE_DIR)/libspaces_ffi.so
BINDINGS    = $(TARGET_DIR)/bindings
LAT        ?= 48.853
LON        ?= -2.341

PEERS      ?= 1000
ARRIVAL    ?= random

.PHONY: help setup relay-venv build demo simulate geokey test lint rust-test bindings kotlin-test android-test swift-test node-test bench anchors android ios clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

setup: ## install the Debian packages and Rust components the build and tests need
	./scripts/setup-debian.sh

build: ## build the library, the CLI and every test target (debug)
	$(CARGO) build --workspace --all-targets

demo: ## the main job: host + 12 listeners as real WebRTC peers on this machine; report in target/demo-report.json
	$(CARGO) run --release -q -p spaces-cli --bin spaces -- demo --json $(TARGET_DIR)/demo-report.json

simulate: ## the product's own participants at scale on a simulated network (PEERS=.. ARRIVAL=random|weak-first|strong-first)
	$(CARGO) run --release -q -p spaces-cli --bin spaces -- simulate --peers $(PEERS) --arrival $(ARRIVAL)

geokey: ## the GeoKeys of a point (LAT=.. LON=..)
	$(CARGO) run --release -q -p spaces-cli --bin spaces -- geokey --lat $(LAT) --lon $(LON) --level all

test: lint rust-test kotlin-test android-test swift-test node-test ## every test: format, lints, Rust suites, Kotlin on the JVM, the Android app under Robolectric, Swift on Linux, Chromium and nostr-tools against the CLI

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

relay-venv: ## install the independent test relay (PyPI nostr-relay) into .venv-relay
	./tests/relays/nostr-relay.sh install

rust-test: relay-venv ## the Rust unit, property and integration tests (real relays on loopback)
	$(CARGO) test --workspace

bindings: ## generate Kotlin and Swift from the built library (UniFFI library mode)
	$(CARGO) build -p spaces-ffi --lib
	$(CARGO) build -p spaces-ffi --features bindgen --bin uniffi-bindgen
	rm -rf $(BINDINGS)
	$(PROFILE_DIR)/uniffi-bindgen generate $(LIB) --config uniffi.toml --no-format \
	  --language kotlin --out-dir $(BINDINGS)/kotlin
	$(PROFILE_DIR)/uniffi-bindgen generate $(LIB) --config uniffi.toml --no-format \
	  --language swift --out-dir $(BINDINGS)/swift
	$(PROFILE_DIR)/uniffi-bindgen generate $(LIB) --config android/uniffi-android.toml --no-format \
	  --language kotlin --out-dir $(BINDINGS)/android-kotlin

node-test: relay-venv ## the spaces CLI against independent peers (Chromium, nostr-tools as peer and attacker) and on real networks in namespaces (needs root); audio checked at the far end
	$(CARGO) build -p spaces-cli --bin spaces -p spaces-impair --bin impair
	cd tests/node && (npm ci --no-audit --no-fund || { sleep 5; npm ci --no-audit --no-fund; })
	SPACES_BIN=$(PROFILE_DIR)/spaces node tests/node/browser.mjs
	SPACES_BIN=$(PROFILE_DIR)/spaces node tests/node/attacks.mjs
	SPACES_BIN=$(PROFILE_DIR)/spaces IMPAIR_BIN=$(PROFILE_DIR)/impair node tests/node/network.mjs

kotlin-test: bindings ## compile the generated Kotlin and run the JUnit suite on the JVM
	$(MVN) -B -ntp -f tests/kotlin/pom.xml test -Dnative.dir=$(PROFILE_DIR) -Dbindings.dir=$(BINDINGS)/kotlin

ANDROID_CHECK = $(MVN) -B -ntp -f android/jvm-check/pom.xml test -Dnative.dir=$(PROFILE_DIR) -Dbindings.dir=$(BINDINGS)/android-kotlin

android-test: bindings ## the Android app's Kotlin against the Android API under Robolectric, at the target SDK (35) and the minSdk (26)
	$(ANDROID_CHECK) -Drobolectric.sdks=35
	$(ANDROID_CHECK) -o -Drobolectric.sdks=26

SWIFT_CHECK = $(TARGET_DIR)/swift-check

swift-test: bindings ## the Swift bindings and the iOS shell's platform-free code under XCTest on Linux (Swift 6.0.3 in a Debian trixie chroot; needs root)
	rm -rf $(SWIFT_CHECK)/Sources $(SWIFT_CHECK)/Tests $(SWIFT_CHECK)/lib
	mkdir -p $(SWIFT_CHECK)/lib
	cp -r ios/LinuxCheck/. $(SWIFT_CHECK)/
	mkdir -p $(SWIFT_CHECK)/Sources/SpacesCoreFFI $(SWIFT_CHECK)/Sources/SpacesCore $(SWIFT_CHECK)/Sources/SpacesApp
	cp $(BINDINGS)/swift/SpacesCoreFFI.h $(SWIFT_CHECK)/Sources/SpacesCoreFFI/
	cp $(BINDINGS)/swift/SpacesCoreFFI.modulemap $(SWIFT_CHECK)/Sources/SpacesCoreFFI/module.modulemap
	cp $(BINDINGS)/swift/SpacesCore.swift $(SWIFT_CHECK)/Sources/SpacesCore/
	cp ios/Sources/SpacesApp/*.swift $(SWIFT_CHECK)/Sources/SpacesApp/
	cp tests/fixtures/geokey-vectors.json $(SWIFT_CHECK)/Tests/SpacesAppTests/Fixtures/
	strip --strip-debug -o $(SWIFT_CHECK)/lib/libspaces_ffi.so $(LIB)
	./scripts/swift-linux.sh test $(SWIFT_CHECK)

bench: relay-venv ## benchmarks (optimised build): criterion suites and the relay latency harness
	$(CARGO) bench --workspace

anchors: ## our link and forwarding benchmark beside Pion v4 on this machine, with ratios (Go fetches Pion)
	./bench/anchors/run.sh

android: ## Android .so files and Kotlin (needs the Android NDK and cargo-ndk)
	./android/build-rust.sh

ios: ## iOS XCFramework and Swift (needs macOS with Xcode)
	./ios/build-rust.sh

clean:
	$(CARGO) clean
	rm -rf tests/kotlin/target
