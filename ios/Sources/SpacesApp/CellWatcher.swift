import CoreLocation
import Foundation
import SpacesCore

/// Feeds CoreLocation fixes to the core's `CellTracker` and reports the user's UMAP cell with
/// its GeoKey. Hysteresis lives in the core; this class only adapts Apple's API.
public final class CellWatcher: NSObject, CLLocationManagerDelegate {
    private let manager = CLLocationManager()
    private let tracker: CellTracker
    private let keyring = GeoKeyring(scheme: .uplanet, namespace: nil, capacity: 54)
    // scrypt takes tens of milliseconds per key: never on the main thread.
    private let derivation = DispatchQueue(label: "org.nostr.spaces.geokeys", qos: .userInitiated)
    private let onCell: (CellMove, GeoKeyInfo) -> Void
    private let onFix: (GpsFix) -> Void

    /// `onFix` receives every usable fix (for the space roaming that follows the user).
    public init(onCell: @escaping (CellMove, GeoKeyInfo) -> Void, onFix: @escaping (GpsFix) -> Void = { _ in }) throws {
        self.tracker = try CellTracker(settings: defaultTrackerSettings())
        self.onCell = onCell
        self.onFix = onFix
        super.init()
        manager.delegate = self
        manager.desiredAccuracy = kCLLocationAccuracyNearestTenMeters
        manager.distanceFilter = 25
    }

    public func start() {
        manager.requestWhenInUseAuthorization()
        manager.startUpdatingLocation()
    }

    public func stop() {
        manager.stopUpdatingLocation()
    }

    public func locationManager(_ manager: CLLocationManager, didUpdateLocations locations: [CLLocation]) {
        for location in locations where location.horizontalAccuracy >= 0 {
            let fix = GpsFix(
                lat: location.coordinate.latitude,
                lon: location.coordinate.longitude,
                accuracyM: location.horizontalAccuracy,
                timeMs: FixClock.ms(of: location.timestamp)
            )
            onFix(fix)
            guard let move = try? tracker.update(fix: fix) else { continue }
            derivation.async { [keyring, onCell] in
                if let key = try? keyring.keyOf(cell: move.to) {
                    onCell(move, key)
                }
            }
        }
    }
}

/// Fix times on the monotonic clock (milliseconds since boot), as the core's tracker wants
/// them: the wall clock can step back when the network corrects it, and the tracker refuses a
/// fix older than the last one, so fixes stamped by the wall clock would be refused until it
/// caught up. A fix's age is what carries over.
public enum FixClock {
    public static func ms(of timestamp: Date, now: Date = Date(),
                          uptime: TimeInterval = ProcessInfo.processInfo.systemUptime) -> UInt64 {
        let age = max(0, now.timeIntervalSince(timestamp))
        return UInt64(max(0, (uptime - age) * 1000))
    }
}
