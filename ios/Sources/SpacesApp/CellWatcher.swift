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
                timeMs: UInt64(max(0, location.timestamp.timeIntervalSince1970 * 1000))
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
