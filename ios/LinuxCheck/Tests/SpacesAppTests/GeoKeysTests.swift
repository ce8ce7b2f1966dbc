import Foundation
import SpacesCore
import XCTest

/// The GeoKey API through the generated Swift: the six shared vectors (the same the Rust, CLI
/// and Kotlin tests check), errors as Swift enum cases.
final class GeoKeysTests: XCTestCase {
    func testTheSharedVectorsMatch() throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("geokey-vectors.json"))
        let vectors = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: String]])
        XCTAssertEqual(vectors.count, 6)
        let ring = GeoKeyring(scheme: .uplanet, namespace: nil, capacity: 16)
        for v in vectors {
            let level: GeoLevel = v["level"] == "UMAP" ? .umap : v["level"] == "SECTOR" ? .sector : .region
            let key = try ring.keyAt(lat: Double(v["lat"]!)!, lon: Double(v["lon"]!)!, level: level)
            XCTAssertEqual(key.salt, v["salt"])
            XCTAssertEqual(key.pepper, v["pepper"])
            XCTAssertEqual(key.pubkey, v["pub"])
            XCTAssertEqual(key.npub, v["npub"])
        }
        XCTAssertEqual(ring.cached(), 6)
    }

    func testBadInputIsATypedError() {
        let ring = GeoKeyring(scheme: .uplanet, namespace: nil, capacity: 4)
        XCTAssertThrowsError(try ring.keyAt(lat: 95, lon: 0, level: .umap)) { error in
            guard case SpacesError.InvalidCoordinate = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Identity.import(secret: "nsec1broken")) { error in
            guard case SpacesError.InvalidKey = error else { return XCTFail("\(error)") }
        }
    }
}
