// swift-tools-version:5.9
// The iOS shell's Swift and the generated bindings, built and tested with Swift on Linux
// (`make swift-test`). `make` copies in the generated SpacesCore.swift and header, the app's
// sources from ../Sources/SpacesApp, and libspaces_ffi.so (lib/). CoreLocation and Network
// are small stand-ins with test hooks; SwiftUI, AVFoundation and Security code is Apple-only
// (`#if canImport`/`#if os(iOS)`) and not compiled here.
import PackageDescription

let package = Package(
    name: "SpacesLinuxCheck",
    platforms: [.macOS(.v12)],
    targets: [
        .systemLibrary(name: "SpacesCoreFFI", path: "Sources/SpacesCoreFFI"),
        .target(name: "SpacesCore", dependencies: ["SpacesCoreFFI"],
                linkerSettings: [.linkedLibrary("spaces_ffi")]),
        .target(name: "CoreLocation"),
        .target(name: "Network"),
        .target(name: "SpacesApp", dependencies: ["SpacesCore", "CoreLocation", "Network"]),
        .testTarget(name: "SpacesAppTests",
                    dependencies: ["SpacesApp", "SpacesCore", "CoreLocation", "Network"],
                    exclude: ["Fixtures"]),
    ]
)
