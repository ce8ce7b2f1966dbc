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

/// A signer app as the app reaches it: the key is in an `Identity` the session never sees.
final class CountingSigner: ExternalSigner, @unchecked Sendable {
    private let key: Identity
    private let lock = NSLock()
    private var count = 0
    init(_ key: Identity) { self.key = key }
    var calls: Int { lock.lock(); defer { lock.unlock() }; return count }
    private func counted<T>(_ work: () throws -> T) rethrows -> T {
        lock.lock(); count += 1; lock.unlock()
        return try work()
    }
    func publicKey() -> String { key.npub() }
    func signEvent(unsignedEvent: String) throws -> String { try counted { try key.signEvent(unsignedEvent: unsignedEvent) } }
    func nip44Encrypt(peer: String, plaintext: String) throws -> String { try counted { try key.nip44Encrypt(peer: peer, plaintext: plaintext) } }
    func nip44Decrypt(peer: String, payload: String) throws -> String { try counted { try key.nip44Decrypt(peer: peer, payload: payload) } }
}
