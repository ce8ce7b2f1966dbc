import Foundation
import SpacesCore

/// The space the phone is in: its session, its state for the screens, and the user's commands.
/// Platform-free (the audio session and the views are Apple's glue around it), so that Linux
/// tests run it against a real relay and real WebRTC.
@available(iOS 15.0, macOS 12.0, *)
public final class SpaceModel: @unchecked Sendable {
    private let lock = NSLock()
    private var current = SpaceState()
    private var observers: [UUID: (SpaceState) -> Void] = [:]
    private var session: SpaceSession?
    private var subscription: Subscription?
    private var policy = InterruptionPolicy()
    private let identity: IdentityStore
    private let deliver: DispatchQueue

    /// Relays the spaces are found and joined on.
    public var relays: [String]
    /// STUN and TURN servers.
    public var iceServers: [IceServerInfo]
    /// Where the space's audio goes (the speaker; silent in tests).
    public var output: AudioOutput = .speaker
    /// Who signs, when the user's key is held elsewhere (a NIP-46 bunker: `UserSigner.bunker`);
    /// nil signs with the identity store's key.
    public var signer: UserSigner?
    /// The network to start with (later changes go through `networkChanged`).
    public var network = NetworkPolicy.info(kind: .unknown, expensive: false, constrained: false)

    /// `deliver` is where observers are called (the main queue in the app).
    public init(identity: IdentityStore, relays: [String], iceServers: [IceServerInfo] = [],
                deliver: DispatchQueue = .main) {
        self.identity = identity
        self.relays = relays
        self.iceServers = iceServers
        self.deliver = deliver
    }

    /// The state now.
    public var state: SpaceState { lock.locked { current } }

    /// Calls `observer` with the state now, then after every change, on the delivery queue.
    /// The returned closure stops it.
    public func observe(_ observer: @escaping (SpaceState) -> Void) -> () -> Void {
        let id = UUID()
        let now = lock.locked { () -> SpaceState in
            observers[id] = observer
            return current
        }
        deliver.async { observer(now) }
        return { [weak self] in _ = self?.lock.locked { self?.observers.removeValue(forKey: id) } }
    }

    /// The running session, for commands the screen sends (chat, hand, promotions).
    public func running() -> SpaceSession? { lock.locked { session } }

    /// Joins the space at `address`.
    public func join(address: String, name: String) async throws {
        let signer = self.signer
        try await enter(name: name, hosting: false) { settings in
            if let signer {
                return try await SpaceSession.joinSignedBy(settings: settings, address: address, signer: signer)
            }
            return try await SpaceSession.join(settings: settings, address: address)
        }
    }

    /// Opens a space named `name`.
    public func host(name: String) async throws {
        let signer = self.signer
        try await enter(name: name, hosting: true) { settings in
            if let signer {
                return try await SpaceSession.hostSignedBy(settings: settings, name: name, cells: [], signer: signer)
            }
            return try await SpaceSession.host(settings: settings, name: name, cells: [])
        }
    }

    /// Leaves the space (the host closes it).
    public func leave() async {
        let (ending, subscribed) = lock.locked { () -> (SpaceSession?, Subscription?) in
            defer { session = nil; subscription = nil }
            return (session, subscription)
        }
        subscribed?.cancel()
        try? await ending?.leave()
        update { _ in SpaceState() }
    }

    /// Mutes or unmutes our voice (the user's choice).
    public func setMuted(_ muted: Bool) throws {
        lock.locked { policy.userChose() }
        try running()?.setMuted(muted: muted)
        update { state in var next = state; next.muted = muted; return next }
    }

    /// The phone's audio changed under us (a call, headphones out).
    public func audioChanged(_ change: AudioChange) {
        let muted = state.muted
        guard let apply = lock.locked({ policy.apply(change, muted: muted) }) else { return }
        try? running()?.setMuted(muted: apply)
        update { state in var next = state; next.muted = apply; return next }
    }

    /// The network changed (a new path).
    public func networkChanged(_ info: NetworkInfo) {
        try? running()?.networkChanged(network: info)
    }

    private func settings() throws -> SessionSettings {
        SessionSettings(
            relays: relays,
            name: "iPhone",
            // Not needed (and not made) when a signer holds the user's key.
            secretKey: signer == nil ? try identity.identity().exportNsec() : nil,
            network: network,
            // Opened only while we speak: a listener's phone never records.
            input: .microphone,
            output: output,
            iceServers: iceServers
        )
    }

    private func enter(name: String, hosting: Bool,
                       start: (SessionSettings) async throws -> SpaceSession) async throws {
        guard state.address == nil else {
            throw SpacesError.InvalidSettings(reason: "already in a space: leave it first")
        }
        let started: SpaceSession
        do {
            started = try await start(try settings())
        } catch {
            update { _ in var failed = SpaceState(); failed.error = "\(error)"; return failed }
            throw error
        }
        let me = try? started.publicKey()
        update { _ in SpaceState(address: started.address(), name: name, me: me, hosting: hosting) }
        let subscribed = try started.subscribe(listener: EventRelay { [weak self] event in
            self?.update { $0.after(event) }
        })
        lock.locked {
            session = started
            subscription = subscribed
        }
    }

    private func update(_ change: (SpaceState) -> SpaceState) {
        let (now, targets) = lock.locked { () -> (SpaceState, [(SpaceState) -> Void]) in
            current = change(current)
            return (current, Array(observers.values))
        }
        deliver.async { targets.forEach { $0(now) } }
    }
}

extension NSLock {
    /// Runs `body` holding the lock (Foundation's own `withLock` needs iOS 16).
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
