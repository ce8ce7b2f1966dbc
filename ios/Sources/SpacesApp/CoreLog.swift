import Foundation
import SpacesCore
#if canImport(os)
import os
#endif

/// The core's logs in the system log (Console.app, `log stream --predicate
/// 'subsystem == "org.nostr.spaces"'`), category "core".
public final class CoreLog: LogSink, @unchecked Sendable {
    private static let lock = NSLock()
    private static var installed = false
    #if canImport(os)
    private let logger = Logger(subsystem: "org.nostr.spaces", category: "core")
    #endif
    /// Where lines go when the platform has no system log (Linux): tests read them here.
    private let fallback: ((LogLevel, String) -> Void)?

    init(fallback: ((LogLevel, String) -> Void)?) { self.fallback = fallback }

    /// Routes core logs to the system log; once per process (later calls do nothing).
    /// `fallback` receives the lines where there is no system log.
    public static func install(filter: String = "info,webrtc=warn",
                               fallback: ((LogLevel, String) -> Void)? = nil) {
        lock.lock()
        defer { lock.unlock() }
        guard !installed else { return }
        installed = true
        try? initLogging(filter: filter, sink: CoreLog(fallback: fallback))
    }

    public func log(level: LogLevel, target: String, message: String) {
        let line = "\(target): \(message)"
        #if canImport(os)
        switch level {
        case .error: logger.error("\(line, privacy: .public)")
        case .warn: logger.warning("\(line, privacy: .public)")
        case .info: logger.info("\(line, privacy: .public)")
        case .debug, .trace: logger.debug("\(line, privacy: .public)")
        }
        #else
        fallback?(level, line)
        #endif
    }
}
