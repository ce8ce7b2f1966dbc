// swift-tools-version:5.9
// The Rust core for iOS: `./build-rust.sh` builds SpacesCoreFFI.xcframework and generates
// Sources/SpacesCore/SpacesCore.swift (both generated, not committed).
import PackageDescription

let package = Package(
    name: "NostrSpaces",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "SpacesCore", targets: ["SpacesCore"]),
        .library(name: "SpacesApp", targets: ["SpacesApp"]),
    ],
    targets: [
        .binaryTarget(name: "SpacesCoreFFI", path: "SpacesCoreFFI.xcframework"),
        .target(name: "SpacesCore", dependencies: ["SpacesCoreFFI"]),
        .target(name: "SpacesApp", dependencies: ["SpacesCore"]),
    ]
)
