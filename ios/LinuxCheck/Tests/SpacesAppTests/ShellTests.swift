import CoreLocation
import Foundation
import Network
import SpacesApp
import SpacesCore
import XCTest

/// The shell's platform-free pieces, and its CoreLocation and Network glue over stand-ins.
final class ShellTests: XCTestCase {
    func testTheUsersKeyIsKeptAndAnUnreadableOneIsNeverReplacedSilently() throws {
        let vault = MemoryVault()
        let first = try IdentityStore(vault: vault).identity()
        XCTAssertEqual(try IdentityStore(vault: vault).identity().publicKey(), first.publicKey())
        let other = Identity.generate()
        try IdentityStore(vault: vault).importKey(other.exportNsec())
        XCTAssertThrowsError(try IdentityStore(vault: vault).importKey("nsec1broken"))
        XCTAssertEqual(try IdentityStore(vault: vault).identity().publicKey(), other.publicKey())
        vault.broken = true
        XCTAssertThrowsError(try IdentityStore(vault: vault).identity())
    }

    func testSpaceStateFollowsHandsRolesChatAndTheEnd() {
        let me = String(repeating: "a", count: 64), bob = String(repeating: "b", count: 64)
        var state = SpaceState(address: "30312:x:y", me: me, role: .host)
        state = state.after(.memberJoined(peer: bob)).after(.handRaised(peer: bob, raised: true))
            .after(.handRaised(peer: bob, raised: true))
        XCTAssertEqual(state.hands, [bob])
        XCTAssertEqual(state.members, 1)
        state = state.after(.roleChanged(peer: bob, role: .speaker))
        XCTAssertEqual(state.hands, [])
        for n in 0..<(SpaceState.chatKept + 3) { state = state.after(.chat(from: bob, text: "\(n)")) }
        XCTAssertEqual(state.chat.count, SpaceState.chatKept)
        XCTAssertTrue(state.after(.removed(peer: me)).ended)
        XCTAssertFalse(state.after(.removed(peer: bob)).ended)
    }

    func testTheNetworkPolicyCapsRelayingOnExpensiveAndConstrainedPaths() {
        let wifi = NetworkPolicy.info(kind: .wifi, expensive: false, constrained: false, lowPower: false)
        XCTAssertEqual(wifi.maxAudioOutputs, 0)
        XCTAssertEqual(wifi.uplinkKbps, 0, "unknown, not zero: the core measures")
        XCTAssertEqual(NetworkPolicy.info(kind: .cellular, expensive: true, constrained: false, lowPower: false)
            .maxAudioOutputs, NetworkPolicy.expensiveOutputs)
        XCTAssertEqual(NetworkPolicy.info(kind: .cellular, expensive: true, constrained: true, lowPower: false)
            .maxAudioOutputs, NetworkPolicy.constrainedOutputs)
        XCTAssertEqual(NetworkPolicy.info(of: NWPath(interfaceTypes: [.cellular], isExpensive: true)).kind, .cellular)
    }

    func testFixTimesAreMonotonic() {
        let now = Date()
        XCTAssertEqual(FixClock.ms(of: now.addingTimeInterval(-2), now: now, uptime: 100), 98_000)
        // The wall clock stepping back changes nothing: a fix's age is what counts.
        XCTAssertEqual(FixClock.ms(of: now.addingTimeInterval(-3600 - 2), now: now.addingTimeInterval(-3600),
                                           uptime: 100), 98_000)
    }

    func testTheCellWatcherReportsTheCellAndItsKey() async throws {
        let moves = Moves()
        let watcher = try CellWatcher(onCell: { move, key in moves.add("\(move.to.latLabel),\(move.to.lonLabel) \(key.npub)") })
        watcher.start()
        let manager = try XCTUnwrap(CLLocationManager.made.last)
        XCTAssertTrue(manager.updating && manager.authorizationRequested)
        manager.deliver([CLLocation(coordinate: CLLocationCoordinate2D(latitude: 48.853, longitude: -2.341),
                                    altitude: 0, horizontalAccuracy: 8, verticalAccuracy: 8, timestamp: Date())])
        let first = try await waitFor(10, "the cell") { moves.first }
        XCTAssertEqual(first, "48.85,-2.34 npub1h347v73kp5h6p8f9xd2m9p6w36mn3hp72w0tssr8fmsmgkn8klns28jrd2")
        watcher.stop()
        XCTAssertFalse(manager.updating)
    }

    func testRoamingOpensTheCellsSpaceAndFollowsThePath() async throws {
        let relay = try await LocalRelay.start(port: nil)
        let settings = SessionSettings(relays: [relay.url()], name: "roamer", secretKey: nil,
                                       network: NetworkPolicy.info(kind: .wifi, expensive: false, constrained: false),
                                       input: .none, output: .silent, iceServers: [])
        let placed = Moves()
        let roaming = try SpaceRoaming(settings: settings, hostIfEmpty: true,
                                       onPlacement: { placed.add($0.address ?? "none") }, onEvent: { _ in })
        roaming.start()
        roaming.offer(GpsFix(lat: 48.853, lon: -2.341, accuracyM: 8, timeMs: 1_000))
        let address = try await waitFor(20, "the cell's space") { placed.first }
        XCTAssertTrue(address.hasPrefix("30312:"))
        XCTAssertNotNil(roaming.session())
        let monitor = try XCTUnwrap(NWPathMonitor.made.last)
        monitor.deliver(NWPath(interfaceTypes: [.cellular], isExpensive: true))
        roaming.stop()
        XCTAssertFalse(monitor.running)
        relay.stop()
    }
}

/// Lines collected from core threads.
final class Moves: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var first: String? { lock.lock(); defer { lock.unlock() }; return lines.first }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}
