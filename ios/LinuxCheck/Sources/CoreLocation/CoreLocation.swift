// A stand-in for the slice of Apple's CoreLocation the shell uses, so that its files compile
// unchanged on Linux; `deliver` and `made` are test hooks.
import Foundation

public typealias CLLocationDegrees = Double
public typealias CLLocationAccuracy = Double
public typealias CLLocationDistance = Double

public let kCLLocationAccuracyNearestTenMeters: CLLocationAccuracy = 10

public struct CLLocationCoordinate2D {
    public var latitude: CLLocationDegrees
    public var longitude: CLLocationDegrees
    public init(latitude: CLLocationDegrees, longitude: CLLocationDegrees) {
        self.latitude = latitude
        self.longitude = longitude
    }
}

open class CLLocation: NSObject {
    public let coordinate: CLLocationCoordinate2D
    public let horizontalAccuracy: CLLocationAccuracy
    public let timestamp: Date

    public init(coordinate: CLLocationCoordinate2D, altitude: CLLocationDistance,
                horizontalAccuracy: CLLocationAccuracy, verticalAccuracy: CLLocationAccuracy,
                timestamp: Date) {
        self.coordinate = coordinate
        self.horizontalAccuracy = horizontalAccuracy
        self.timestamp = timestamp
    }
}

public protocol CLLocationManagerDelegate: AnyObject {
    func locationManager(_ manager: CLLocationManager, didUpdateLocations locations: [CLLocation])
}

open class CLLocationManager: NSObject {
    /// Every manager made, newest last (test hook).
    public static var made: [CLLocationManager] = []

    public weak var delegate: CLLocationManagerDelegate?
    public var desiredAccuracy: CLLocationAccuracy = 0
    public var distanceFilter: CLLocationDistance = 0
    public private(set) var updating = false
    public private(set) var authorizationRequested = false

    public override init() {
        super.init()
        CLLocationManager.made.append(self)
    }

    public func requestWhenInUseAuthorization() { authorizationRequested = true }
    public func startUpdatingLocation() { updating = true }
    public func stopUpdatingLocation() { updating = false }

    /// Fixes from the "system" (test hook); only while updating, as on a phone.
    public func deliver(_ locations: [CLLocation]) {
        guard updating else { return }
        delegate?.locationManager(self, didUpdateLocations: locations)
    }
}
