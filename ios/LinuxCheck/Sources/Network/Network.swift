// A stand-in for the slice of Apple's Network framework the shell uses (path monitoring), so
// that its files compile unchanged on Linux; `deliver` and `made` are test hooks.
import Foundation

public enum NWInterface {
    public enum InterfaceType: Equatable {
        case other, wifi, cellular, wiredEthernet, loopback
    }
}

public struct NWPath {
    public var interfaceTypes: [NWInterface.InterfaceType]
    public var isExpensive: Bool
    public var isConstrained: Bool

    public init(interfaceTypes: [NWInterface.InterfaceType], isExpensive: Bool = false, isConstrained: Bool = false) {
        self.interfaceTypes = interfaceTypes
        self.isExpensive = isExpensive
        self.isConstrained = isConstrained
    }

    public func usesInterfaceType(_ type: NWInterface.InterfaceType) -> Bool { interfaceTypes.contains(type) }
}

public final class NWPathMonitor {
    /// Every monitor made, newest last (test hook).
    public static var made: [NWPathMonitor] = []

    public var pathUpdateHandler: ((NWPath) -> Void)?
    public private(set) var running = false
    private var queue: DispatchQueue?

    public init() { NWPathMonitor.made.append(self) }

    public func start(queue: DispatchQueue) {
        self.queue = queue
        running = true
    }

    public func cancel() { running = false }

    /// A path change from the "system" (test hook), on the monitor's queue, waited for.
    public func deliver(_ path: NWPath) {
        guard running, let queue else { return }
        queue.sync { pathUpdateHandler?(path) }
    }
}
