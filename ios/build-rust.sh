#!/usr/bin/env bash
# Builds SpacesCoreFFI.xcframework (device + simulator) and generates the Swift bindings.
# Needs macOS with Xcode and the rustup targets aarch64-apple-ios aarch64-apple-ios-sim
# x86_64-apple-ios.
set -euo pipefail
cd "$(dirname "$0")/.."

export IPHONEOS_DEPLOYMENT_TARGET=15.0
for target in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
  cargo build --release -p spaces-ffi --lib --target "$target"
done
mkdir -p target/ios-sim
lipo -create target/aarch64-apple-ios-sim/release/libspaces_ffi.a \
  target/x86_64-apple-ios/release/libspaces_ffi.a -output target/ios-sim/libspaces_ffi.a

cargo build -p spaces-ffi --features bindgen --bin uniffi-bindgen
out=target/bindings/ios
rm -rf "$out" && mkdir -p "$out/include"
target/debug/uniffi-bindgen generate target/aarch64-apple-ios/release/libspaces_ffi.a \
  --config uniffi.toml --no-format --language swift --out-dir "$out"
mv "$out/SpacesCoreFFI.h" "$out/include/"
mv "$out/SpacesCoreFFI.modulemap" "$out/include/module.modulemap"

rm -rf ios/SpacesCoreFFI.xcframework
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release/libspaces_ffi.a -headers "$out/include" \
  -library target/ios-sim/libspaces_ffi.a -headers "$out/include" \
  -output ios/SpacesCoreFFI.xcframework
mkdir -p ios/Sources/SpacesCore
cp "$out/SpacesCore.swift" ios/Sources/SpacesCore/
echo "ios: ios/SpacesCoreFFI.xcframework and ios/Sources/SpacesCore/SpacesCore.swift"
