import Foundation
import Network
import SpacesCore

/// Auto-join by cell: every fix goes to the core's `CellRoamer`, which decides when the user has
/// really moved, leaves the old cell's space and joins (or opens) the new one. Path changes go
/// to the running session (ICE restart, tree re-plan). This class only adapts Apple's APIs.
@available(iOS 15.0, macOS 12.0, *)
public final class SpaceRoaming {
    private let roamer: CellRoamer
    private let monitor = NWPathMonitor()
    private var fixes: AsyncStream<GpsFix>.Continuation?
    private var consumer: Task<Void, Never>?
    private var subscription: Subscription?
    private let onPlacement: (CellPlacement) -> Void
    private let onEvent: (SessionEvent) -> Void

    /// `settings` are the user's (their key, relays, ICE servers); its network is replaced by
    /// what the path monitor reports.
    public init(
        settings: SessionSettings,
        hostIfEmpty: Bool,
        onPlacement: @escaping (CellPlacement) -> Void,
        onEvent: @escaping (SessionEvent) -> Void
    ) throws {
        roamer = try CellRoamer(settings: settings, hostIfEmpty: hostIfEmpty, tracker: defaultTrackerSettings())
        self.onPlacement = onPlacement
        self.onEvent = onEvent
    }

    public func start() {
        monitor.pathUpdateHandler = { [roamer] path in
            try? roamer.session()?.networkChanged(network: NetworkPolicy.info(of: path))
        }
        monitor.start(queue: DispatchQueue(label: "org.nostr.spaces.path"))
        let (stream, continuation) = AsyncStream<GpsFix>.makeStream(bufferingPolicy: .bufferingNewest(1))
        fixes = continuation
        consumer = Task { [weak self, roamer, onPlacement, onEvent] in
            for await fix in stream {
                do {
                    guard let placement = try await roamer.fix(fix: fix) else { continue }
                    // The new space's events, its state first; the old subscription ends with it.
                    let subscription = try roamer.session()?.subscribe(listener: EventRelay(onEvent))
                    self?.subscription = subscription
                    onPlacement(placement)
                } catch {
                    NSLog("fix not followed: \(error)")
                }
            }
        }
    }

    /// Called by `CellWatcher` for every platform fix.
    public func offer(_ fix: GpsFix) {
        fixes?.yield(fix)
    }

    /// The space of the cell the user is in, if any.
    public func session() -> SpaceSession? { roamer.session() }

    /// Leaves the space; `start` rejoins on the next fix.
    public func stop() {
        monitor.cancel()
        fixes?.finish()
        consumer?.cancel()
        subscription?.cancel()
        subscription = nil
        Task { [roamer] in try? await roamer.leave() }
    }
}

/// What the core is told of the network. iOS gives no bandwidth estimate: the uplink is
/// unknown (0), and the core starts with two relayed streams and measures its links.
public enum NetworkPolicy {
    /// Relayed streams on an expensive path (cellular, a phone's hotspot): the user pays.
    public static let expensiveOutputs: UInt32 = 4
    /// Relayed streams in Low Data Mode or Low Power Mode.
    public static let constrainedOutputs: UInt32 = 2

    /// Whether the phone is in Low Power Mode (never on Linux).
    public static var lowPower: Bool {
        #if os(iOS)
        return ProcessInfo.processInfo.isLowPowerModeEnabled
        #else
        return false
        #endif
    }

    /// The network as the core takes it.
    public static func info(kind: ConnectionType, expensive: Bool, constrained: Bool,
                            lowPower: Bool = NetworkPolicy.lowPower) -> NetworkInfo {
        let outputs: UInt32 = constrained || lowPower ? constrainedOutputs : expensive ? expensiveOutputs : 0
        return NetworkInfo(kind: kind, uplinkKbps: 0, downlinkKbps: 0, maxAudioOutputs: outputs)
    }

    /// The network a path describes.
    public static func info(of path: NWPath) -> NetworkInfo {
        let kind: ConnectionType = path.usesInterfaceType(.wifi) ? .wifi
            : path.usesInterfaceType(.cellular) ? .cellular
            : path.usesInterfaceType(.wiredEthernet) ? .ethernet : .unknown
        return info(kind: kind, expensive: path.isExpensive, constrained: path.isConstrained)
    }
}

/// Hands core events to a closure (the core calls it on one of its threads; the closure only
/// dispatches to the main queue, hence `@unchecked Sendable`).
final class EventRelay: SessionListener, @unchecked Sendable {
    private let handler: (SessionEvent) -> Void
    init(_ handler: @escaping (SessionEvent) -> Void) { self.handler = handler }
    func onEvent(event: SessionEvent) { handler(event) }
}
