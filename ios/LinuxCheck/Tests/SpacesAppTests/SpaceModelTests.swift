import Foundation
import SpacesApp
import SpacesCore
import XCTest

/// The app's own path to a space, on a real relay with real WebRTC and Opus: the model joins a
/// host, plays its tone, follows a promotion and the chat, mutes on an interruption, leaves.
final class SpaceModelTests: XCTestCase {
    func testTheModelJoinsHearsIsPromotedChatsAndLeaves() async throws {
        let logged = Moves()
        CoreLog.install(fallback: { _, line in logged.add(line) })
        let relay = try await LocalRelay.start(port: nil)
        let host = try await SpaceSession.host(settings: hostSettings(relay: relay.url(), hz: 440),
                                               name: "tone space", cells: [])
        let vault = MemoryVault()
        let model = SpaceModel(identity: IdentityStore(vault: vault), relays: [relay.url()],
                               deliver: DispatchQueue(label: "observers"))
        let seen = Moves()
        let stop = model.observe { state in seen.add(state.address ?? "") }
        defer { stop() }

        try await model.join(address: host.address(), name: "tone space")
        let me = try XCTUnwrap(model.running()?.publicKey())
        XCTAssertEqual(me, try IdentityStore(vault: vault).identity().publicKey(), "the user's own key")

        // The host's tone, decoded and played through the model's session.
        let hostVoice = try voiceId(publicKey: host.publicKey())
        let heard = try await waitFor(20, "the host's tone") {
            try model.running()?.info().voices.first { $0.voice == hostVoice && $0.frames >= 50 && abs(($0.frequencyHz ?? 0) - 440) < 15 }
        }
        XCTAssertEqual(heard.frequencyHz ?? 0, 440, accuracy: 15)
        _ = try await waitFor(10, "our role") { model.state.role == .listener ? true : nil }

        XCTAssertTrue(logged.all.contains { $0.hasPrefix("spaces_core") }, "core logs reach the app")

        // The host lets us speak; the event reaches the state.
        try host.promoteSpeaker(peer: me)
        _ = try await waitFor(10, "the promotion") { model.state.role == .speaker ? true : nil }

        try host.sendChat(text: "welcome")
        _ = try await waitFor(10, "the host's chat line") { model.state.chat.last?.text == "welcome" ? true : nil }

        // A phone call mutes our voice and its end gives it back; the user's own mute stays.
        model.audioChanged(.interruptionBegan)
        XCTAssertTrue(model.state.muted)
        model.audioChanged(.interruptionEnded(shouldResume: true))
        XCTAssertFalse(model.state.muted)
        try model.setMuted(true)
        model.audioChanged(.interruptionBegan)
        model.audioChanged(.interruptionEnded(shouldResume: true))
        XCTAssertTrue(model.state.muted, "the user muted: an interruption does not unmute")

        do {
            try await model.join(address: host.address(), name: "again")
            XCTFail("a second join must be refused")
        } catch SpacesError.InvalidSettings {}

        await model.leave()
        XCTAssertNil(model.state.address)
        XCTAssertNil(model.running())
        XCTAssertTrue(seen.all.contains(host.address()), "observers saw the space")
        try await host.leave()
        relay.stop()
    }

    func testASignerElsewhereSignsTheSession() async throws {
        let relay = try await LocalRelay.start(port: nil)
        let host = try await SpaceSession.host(settings: hostSettings(relay: relay.url(), hz: 440),
                                               name: "signed", cells: [])
        let key = Identity.generate()
        let external = CountingSigner(key)
        let vault = MemoryVault()
        let model = SpaceModel(identity: IdentityStore(vault: vault), relays: [relay.url()])
        model.signer = try UserSigner.external(signer: external)
        try await model.join(address: host.address(), name: "signed")
        XCTAssertEqual(try model.running()?.publicKey(), key.publicKey())
        let hostVoice = try voiceId(publicKey: host.publicKey())
        _ = try await waitFor(20, "the host's tone") {
            try model.running()?.info().voices.first { $0.voice == hostVoice && $0.frames >= 50 && abs(($0.frequencyHz ?? 0) - 440) < 15 }
        }
        XCTAssertGreaterThanOrEqual(external.calls, 3, "signed, sealed and opened elsewhere")
        XCTAssertNil(vault.secret, "no key of the app's own made")
        await model.leave()
        try await host.leave()
        relay.stop()
    }

    func testAFailedJoinSaysWhy() async throws {
        let model = SpaceModel(identity: IdentityStore(vault: MemoryVault()), relays: ["ws://127.0.0.1:9"])
        do {
            try await model.join(address: "30312:nothex:id", name: "x")
            XCTFail("an invalid address must fail")
        } catch SpacesError.InvalidSpace {}
        XCTAssertNotNil(model.state.error)
        XCTAssertNil(model.state.address)
    }
}
