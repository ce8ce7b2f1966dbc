package org.nostr.spaces.app

import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.os.BatteryManager
import android.os.Handler
import android.os.PowerManager
import org.nostr.spaces.core.NetworkInfo
import org.nostr.spaces.core.ConnectionType

/** How many streams the phone lets itself relay, from what the platform says. */
object NetworkPolicy {
    /** Relayed streams on a metered network: the user pays for every byte sent. */
    const val METERED_OUTPUTS = 4u

    /** Relayed streams on low battery or in battery saver. */
    const val LOW_BATTERY_OUTPUTS = 2u

    /**
     * The network as the core takes it. The uplink is the platform's estimate (0 when it has
     * none: the core then starts with two streams and measures); the core learns the real
     * rate from its children's receiver reports either way.
     */
    fun info(kind: ConnectionType, uplinkKbps: Int, downlinkKbps: Int, metered: Boolean, lowBattery: Boolean) =
        NetworkInfo(
            kind = kind,
            uplinkKbps = uplinkKbps.coerceAtLeast(0).toUInt(),
            downlinkKbps = downlinkKbps.coerceAtLeast(0).toUInt(),
            maxAudioOutputs = when {
                lowBattery -> LOW_BATTERY_OUTPUTS
                metered -> METERED_OUTPUTS
                else -> 0u
            },
        )

    /** The kind of network these capabilities describe. */
    fun kind(caps: NetworkCapabilities): ConnectionType = when {
        caps.hasTransport(NetworkCapabilities.TRANSPORT_WIFI) -> ConnectionType.WIFI
        caps.hasTransport(NetworkCapabilities.TRANSPORT_CELLULAR) -> ConnectionType.CELLULAR
        caps.hasTransport(NetworkCapabilities.TRANSPORT_ETHERNET) -> ConnectionType.ETHERNET
        else -> ConnectionType.UNKNOWN
    }
}

/**
 * Follows the default network and tells the session when it really changed: callbacks come
 * in bursts (a hand-over gives several capability changes within a second), and each
 * `networkChanged` restarts ICE on every link, so changes are debounced and repeats dropped.
 */
class NetworkWatch(
    private val connectivity: ConnectivityManager,
    private val lowBattery: () -> Boolean,
    private val handler: Handler,
    private val onChange: (NetworkInfo) -> Unit,
    private val debounceMs: Long = DEBOUNCE_MS,
) {
    private var registered = false
    private var pending: NetworkInfo? = null
    private var last: NetworkInfo? = null

    private val deliver = Runnable {
        val info = pending ?: return@Runnable
        pending = null
        if (info != last) {
            last = info
            onChange(info)
        }
    }

    private val callback = object : ConnectivityManager.NetworkCallback() {
        override fun onCapabilitiesChanged(network: Network, caps: NetworkCapabilities) {
            settle(info(caps))
        }
    }

    /** The network now (for a session about to start); also what later changes compare with. */
    fun current(): NetworkInfo {
        val now = connectivity.getNetworkCapabilities(connectivity.activeNetwork)?.let(::info)
            ?: NetworkPolicy.info(ConnectionType.UNKNOWN, 0, 0, metered = false, lowBattery = lowBattery())
        last = now
        return now
    }

    /** Starts following (idempotent). */
    fun start() {
        if (registered) return
        connectivity.registerDefaultNetworkCallback(callback, handler)
        registered = true
    }

    /** Stops following; safe when never started (the framework throws on an unknown callback). */
    fun stop() {
        handler.removeCallbacks(deliver)
        pending = null
        if (!registered) return
        connectivity.unregisterNetworkCallback(callback)
        registered = false
    }

    private fun settle(info: NetworkInfo) {
        pending = info
        handler.removeCallbacks(deliver)
        handler.postDelayed(deliver, debounceMs)
    }

    private fun info(caps: NetworkCapabilities) = NetworkPolicy.info(
        NetworkPolicy.kind(caps),
        caps.linkUpstreamBandwidthKbps,
        caps.linkDownstreamBandwidthKbps,
        metered = !caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED),
        lowBattery = lowBattery(),
    )

    companion object {
        /** A change is reported once the network has been quiet this long. */
        const val DEBOUNCE_MS = 1_500L

        /** Battery at or below this share, not charging, counts as low. */
        const val LOW_BATTERY_PERCENT = 15

        /** Whether the phone is in battery saver, or low and not charging. */
        fun lowBattery(battery: BatteryManager?, power: PowerManager?): Boolean {
            if (power?.isPowerSaveMode == true) return true
            if (battery == null || battery.isCharging) return false
            val percent = battery.getIntProperty(BatteryManager.BATTERY_PROPERTY_CAPACITY)
            return percent in 0..LOW_BATTERY_PERCENT
        }
    }
}
