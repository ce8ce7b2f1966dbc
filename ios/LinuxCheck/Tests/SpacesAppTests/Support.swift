import Foundation
import SpacesApp
import SpacesCore
import XCTest

/// Waits for `probe` to give a value: a failure bound, not a speed assertion.
func waitFor<T>(_ seconds: Double, _ what: String, _ probe: () throws -> T?) async throws -> T {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if let value = try probe() { return value }
        try await Task.sleep(nanoseconds: 50_000_000)
    }
    XCTFail("timed out waiting for \(what)")
    throw SpacesError.Stopped(reason: "timed out waiting for \(what)")
}

/// A vault in memory (the Keychain is Apple's); `broken` makes reads fail as a lost key would.
final class MemoryVault: SecretVault {
    var secret: String?
    var broken = false
    func read() throws -> String? {
        if broken { throw IdentityError.vault(-25300) }
        return secret
    }
    func write(_ secret: String) throws { self.secret = secret }
}

/// A host phone outside the app: the core's own API, playing a tone.
func hostSettings(relay: String, hz: Float) -> SessionSettings {
    SessionSettings(relays: [relay], name: "host", secretKey: nil,
                    network: NetworkInfo(kind: .wifi, uplinkKbps: 5000, downlinkKbps: 20000, maxAudioOutputs: 0),
                    input: .tone(hz: hz), output: .silent, iceServers: [])
}

/// The tests' own folder.
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
