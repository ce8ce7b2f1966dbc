package org.nostr.spaces.core

import java.io.File
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** The GeoKey API as the Android app calls it, through the generated Kotlin and JNA. */
class GeoKeysTest {
    private data class Vector(
        val lat: String, val lon: String, val level: String,
        val salt: String, val pepper: String, val priv: String, val pub: String, val npub: String,
    )

    /** The six shared vectors, read with a tiny field scanner to keep the test free of JSON deps. */
    private fun vectors(): List<Vector> {
        val text = File(System.getProperty("spaces.fixtures"), "geokey-vectors.json").readText()
        return Regex("\\{[^}]*\\}").findAll(text).map { obj ->
            fun field(name: String) =
                Regex("\"$name\"\\s*:\\s*\"([^\"]*)\"").find(obj.value)!!.groupValues[1]
            Vector(field("lat"), field("lon"), field("level"), field("salt"), field("pepper"),
                field("priv"), field("pub"), field("npub"))
        }.toList()
    }

    private fun level(name: String) = when (name) {
        "UMAP" -> GeoLevel.UMAP
        "SECTOR" -> GeoLevel.SECTOR
        "REGION" -> GeoLevel.REGION
        else -> error("unknown level $name")
    }

    @Test
    fun sixVectorsMatchTheUplanetKeygen() {
        val ring = GeoKeyring(KeyScheme.UPLANET, null, 16u)
        val vectors = vectors()
        assertEquals(6, vectors.size)
        for (v in vectors) {
            val key = ring.keyAt(v.lat.toDouble(), v.lon.toDouble(), level(v.level))
            assertEquals(v.salt, key.salt)
            assertEquals(v.pepper, key.pepper)
            assertEquals(v.pub, key.pubkey)
            assertEquals(v.npub, key.npub)
            assertNull(key.seed)
            assertTrue(ring.nsecOf(key.cell).startsWith("nsec1"))
        }
        assertEquals(6u, ring.cached())
    }

    @Test
    fun keysAtAPointComeFinestFirstAndAsPTags() {
        val ring = GeoKeyring(KeyScheme.UPLANET, originNamespace(), 8u)
        val keys = ring.keysAt(48.853, -2.341)
        assertEquals(listOf(GeoLevel.UMAP, GeoLevel.SECTOR, GeoLevel.REGION), keys.map { it.cell.level })
        assertEquals(keys.map { listOf("p", it.pubkey) }, ring.pTagsAt(48.853, -2.341))
    }

    @Test
    fun nip101SchemeIsExplicitAndDifferent() {
        val nip = GeoKeyring(KeyScheme.NIP101, "UPlanetV1", 4u).keyAt(48.853, -2.341, GeoLevel.UMAP)
        assertEquals("UPlanetV148.85-2.34", nip.seed)
        assertNotEquals("bc6be67a360d2fa09d253355b2874e8eb738dc3e539eb840674ee1b45a67b7e7", nip.pubkey)
    }

    @Test
    fun cellsNeighboursAndTags() {
        val cell = cellAt(-0.003, 179.999, GeoLevel.UMAP)
        assertEquals(GeoCell(GeoLevel.UMAP, "-0.00", "180.00"), cell)
        val around = cellNeighbours(cell)
        assertEquals(8, around.size)
        assertTrue(around.contains(GeoCell(GeoLevel.UMAP, "0.01", "-180.00")))
        val tags = cellLocationTags(cell, "UPlanet")
        assertEquals(listOf("latitude", "-0.00"), tags[0])
        assertEquals(listOf("g", "-0.00,180.00"), tags[3])
    }

    @Test
    fun errorsArriveAsKotlinExceptions() {
        val ring = GeoKeyring(KeyScheme.UPLANET, null, 4u)
        assertThrows<SpacesException.InvalidCoordinate> { ring.keyAt(Double.NaN, 2.0, GeoLevel.UMAP) }
        assertThrows<SpacesException.InvalidCoordinate> { cellAt(48.0, 180.5, GeoLevel.REGION) }
        assertThrows<SpacesException.KeylessStrip> { ring.keyAt(0.002, 2.0, GeoLevel.UMAP) }
        assertThrows<SpacesException.InvalidLabel> { cellNeighbours(GeoCell(GeoLevel.UMAP, "48.8", "2.00")) }
        val bad = defaultTrackerSettings().copy(marginM = Double.NaN)
        assertThrows<SpacesException.InvalidSettings> { CellTracker(bad) }
    }

    @Test
    fun trackerMovesOnceAndRefusesBadFixes() {
        val tracker = CellTracker(defaultTrackerSettings())
        val first = tracker.update(GpsFix(48.853, -2.341, 10.0, 1_000uL))
        assertEquals(CellMove(null, GeoCell(GeoLevel.UMAP, "48.85", "-2.34")), first)
        // 15 m past the northern edge: inside the hysteresis margin, no move.
        assertNull(tracker.update(GpsFix(48.855135, -2.341, 10.0, 2_000uL)))
        val err = assertThrows<SpacesException.InvalidFix> {
            tracker.update(GpsFix(48.86, -2.341, 10.0, 500uL))
        }
        assertTrue(err.reason.contains("before"), err.reason)
        assertThrows<SpacesException.InvalidFix> { tracker.update(GpsFix(48.86, -2.341, 500.0, 3_000uL)) }
        val moved = tracker.update(GpsFix(48.8575, -2.341, 10.0, 4_000uL))
        assertEquals(GeoCell(GeoLevel.UMAP, "48.86", "-2.34"), moved?.to)
        assertEquals(GeoCell(GeoLevel.UMAP, "48.86", "-2.34"), tracker.current())
    }
}
