#!/usr/bin/env bash
# Builds libspaces_ffi.so for Android ABIs and generates the Android Kotlin bindings.
# Needs: the Android NDK (ANDROID_NDK_HOME), `cargo install cargo-ndk`, and the rustup targets
# aarch64-linux-android armv7-linux-androideabi x86_64-linux-android.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${ANDROID_NDK_HOME:?set ANDROID_NDK_HOME to the Android NDK}"
command -v cargo-ndk >/dev/null || { echo "install cargo-ndk: cargo install cargo-ndk" >&2; exit 1; }

# 16 KB page alignment is required for apps targeting Android 15+.
export RUSTFLAGS="${RUSTFLAGS:-} -Clink-arg=-Wl,-z,max-page-size=16384"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -o android/core/src/main/jniLibs \
  build --release -p spaces-ffi --lib

cargo build -p spaces-ffi --features bindgen --bin uniffi-bindgen
target/debug/uniffi-bindgen generate android/core/src/main/jniLibs/arm64-v8a/libspaces_ffi.so \
  --config android/uniffi-android.toml --no-format --language kotlin \
  --out-dir android/core/src/main/kotlin
echo "android: libraries in android/core/src/main/jniLibs, Kotlin in android/core/src/main/kotlin"
