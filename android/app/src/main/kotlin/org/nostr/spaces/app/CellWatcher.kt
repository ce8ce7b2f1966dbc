package org.nostr.spaces.app

import android.annotation.SuppressLint
import android.location.Location
import android.location.LocationListener
import android.location.LocationManager
import android.os.Looper
import android.util.Log
import java.util.concurrent.Executors
import org.nostr.spaces.core.CellMove
import org.nostr.spaces.core.CellTracker
import org.nostr.spaces.core.GeoKeyInfo
import org.nostr.spaces.core.GeoKeyring
import org.nostr.spaces.core.GpsFix
import org.nostr.spaces.core.KeyScheme
import org.nostr.spaces.core.SpacesException
import org.nostr.spaces.core.defaultTrackerSettings

/**
 * Feeds platform location fixes to the core's [CellTracker] and reports the user's UMAP cell
 * with its GeoKey. Hysteresis lives in the core; this class only adapts Android's API.
 */
class CellWatcher(
    private val locationManager: LocationManager,
    private val onCell: (CellMove, GeoKeyInfo) -> Unit,
    /** Every usable fix, for the space roaming that follows the user. */
    private val onFix: (GpsFix) -> Unit = {},
) : LocationListener {
    private val tracker = CellTracker(defaultTrackerSettings())
    private val keyring = GeoKeyring(KeyScheme.UPLANET, null, 54u)
    // scrypt takes tens of milliseconds per key: never on the main thread.
    private val derivation = Executors.newSingleThreadExecutor()

    /** Starts fixes every 5 s or 25 m, whichever comes first. Needs a location permission. */
    @SuppressLint("MissingPermission")
    fun start() {
        locationManager.requestLocationUpdates(
            LocationManager.FUSED_PROVIDER, 5_000L, 25f, this, Looper.getMainLooper(),
        )
    }

    fun stop() {
        locationManager.removeUpdates(this)
    }

    override fun onLocationChanged(location: Location) {
        val fix = GpsFix(
            location.latitude,
            location.longitude,
            if (location.hasAccuracy()) location.accuracy.toDouble() else 1_000.0,
            // Monotonic: wall-clock time can jump back when the network corrects it.
            (location.elapsedRealtimeNanos / 1_000_000).toULong(),
        )
        onFix(fix)
        val move = try {
            tracker.update(fix) ?: return
        } catch (e: SpacesException) {
            Log.d(TAG, "fix refused: ${e.message}")
            return
        }
        derivation.execute {
            try {
                onCell(move, keyring.keyOf(move.to))
            } catch (e: SpacesException) {
                Log.w(TAG, "no key for ${move.to}: ${e.message}")
            }
        }
    }

    // Abstract before API 30 (minSdk is 26): without them the platform's first provider
    // change crashes the app with AbstractMethodError. Nothing to do: fixes simply stop or resume.
    override fun onProviderDisabled(provider: String) {}

    override fun onProviderEnabled(provider: String) {}

    @Deprecated("Called only before API 29")
    @Suppress("DEPRECATION")
    override fun onStatusChanged(provider: String?, status: Int, extras: android.os.Bundle?) {}

    private companion object {
        const val TAG = "CellWatcher"
    }
}
