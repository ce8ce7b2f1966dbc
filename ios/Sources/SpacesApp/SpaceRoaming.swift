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
    private let onPlacement: (CellPlacement) -> Void
    private let onEvent: (SessionEvent) -> Void

    public init(
        relays: [String],
        hostIfEmpty: Bool,
        onPlacement: @escaping (CellPlacement) -> Void,
        onEvent: @escaping (SessionEvent) -> Void
    ) throws {
        let settings = SessionSettings(
            relays: relays,
            name: "iPhone",
            secretKey: nil, // the Keychain provides the user's nsec in a full build
            network: NetworkInfo(kind: .unknown, uplinkKbps: 0, downlinkKbps: 0, maxAudioOutputs: 0),
            input: .microphone,
            output: .speaker,
            iceServers: []
        )
        roamer = try CellRoamer(settings: settings, hostIfEmpty: hostIfEmpty, tracker: defaultTrackerSettings())
        self.onPlacement = onPlacement
        self.onEvent = onEvent
    }

    public func start() {
        monitor.pathUpdateHandler = { [roamer] path in
            let kind: NetworkKind = path.usesInterfaceType(.wifi) ? .wifi
                : path.usesInterfaceType(.cellular) ? .cellular
                : path.usesInterfaceType(.wiredEthernet) ? .ethernet : .unknown
            // iOS gives no bandwidth estimate: the core measures its links.
            try? roamer.session()?.networkChanged(
                network: NetworkInfo(kind: kind, uplinkKbps: 0, downlinkKbps: 0, maxAudioOutputs: 0))
        }
        monitor.start(queue: DispatchQueue(label: "org.nostr.spaces.path"))
        let (stream, continuation) = AsyncStream<GpsFix>.makeStream(bufferingPolicy: .bufferingNewest(1))
        fixes = continuation
        consumer = Task { [roamer, onPlacement, onEvent] in
            for await fix in stream {
                do {
                    guard let placement = try await roamer.fix(fix: fix) else { continue }
                    try roamer.session()?.setListener(listener: EventRelay(onEvent))
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

    /// Leaves the space; `start` rejoins on the next fix.
    public func stop() {
        monitor.cancel()
        fixes?.finish()
        consumer?.cancel()
        Task { [roamer] in try? await roamer.leave() }
    }
}

/// Hands core events to a closure (the core calls it on one of its threads; the closure only
/// dispatches to the main queue, hence `@unchecked Sendable`).
private final class EventRelay: SessionListener, @unchecked Sendable {
    private let handler: (SessionEvent) -> Void
    init(_ handler: @escaping (SessionEvent) -> Void) { self.handler = handler }
    func onEvent(event: SessionEvent) { handler(event) }
}
