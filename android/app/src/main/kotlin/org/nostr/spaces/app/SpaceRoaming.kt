package org.nostr.spaces.app

import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.util.Log
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.launch
import org.nostr.spaces.core.AudioInput
import org.nostr.spaces.core.AudioOutput
import org.nostr.spaces.core.CellPlacement
import org.nostr.spaces.core.CellRoamer
import org.nostr.spaces.core.GpsFix
import org.nostr.spaces.core.NetworkInfo
import org.nostr.spaces.core.NetworkKind
import org.nostr.spaces.core.SessionEvent
import org.nostr.spaces.core.SessionListener
import org.nostr.spaces.core.SessionSettings
import org.nostr.spaces.core.SpacesException
import org.nostr.spaces.core.defaultTrackerSettings

/**
 * Auto-join by cell: every fix goes to the core's [CellRoamer], which decides when the user has
 * really moved, leaves the old cell's space and joins (or opens) the new one. Network changes
 * go to the running session (ICE restart, tree re-plan). This class only adapts Android's APIs.
 */
class SpaceRoaming(
    private val connectivity: ConnectivityManager,
    relays: List<String>,
    hostIfEmpty: Boolean,
    private val onPlacement: (CellPlacement) -> Unit,
    private val onEvent: (SessionEvent) -> Unit,
) {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    // Fixes are handled one at a time, in order; a backlog keeps only what is still useful.
    private val fixes = Channel<GpsFix>(Channel.CONFLATED)
    private val roamer = CellRoamer(
        SessionSettings(
            relays = relays,
            name = android.os.Build.MODEL,
            secretKey = null, // the app's key store provides the user's nsec in a full build
            network = currentNetwork(),
            input = AudioInput.Microphone,
            output = AudioOutput.SPEAKER,
            iceServers = emptyList(),
        ),
        hostIfEmpty,
        defaultTrackerSettings(),
    )

    private val networkCallback = object : ConnectivityManager.NetworkCallback() {
        override fun onCapabilitiesChanged(network: Network, caps: NetworkCapabilities) {
            val info = networkInfo(caps)
            try {
                roamer.session()?.networkChanged(info)
            } catch (e: SpacesException) {
                Log.w(TAG, "network change not applied: ${e.message}")
            }
        }
    }

    private var consumer: kotlinx.coroutines.Job? = null

    fun start() {
        connectivity.registerDefaultNetworkCallback(networkCallback)
        if (consumer?.isActive == true) return
        consumer = scope.launch {
            for (fix in fixes) {
                try {
                    val placement = roamer.fix(fix) ?: continue
                    roamer.session()?.setListener(object : SessionListener {
                        override fun onEvent(event: SessionEvent) = this@SpaceRoaming.onEvent(event)
                    })
                    onPlacement(placement)
                } catch (e: SpacesException) {
                    Log.w(TAG, "fix not followed: ${e.message}")
                }
            }
        }
    }

    /** Called by [CellWatcher] for every platform fix. */
    fun offer(fix: GpsFix) {
        fixes.trySend(fix)
    }

    /** Leaves the space (the app went to the background); [start] rejoins on the next fix. */
    fun stop() {
        connectivity.unregisterNetworkCallback(networkCallback)
        scope.launch { roamer.leave() }
    }

    /** Ends for good (the activity is destroyed). */
    fun close() {
        scope.cancel()
    }

    private fun currentNetwork(): NetworkInfo =
        connectivity.getNetworkCapabilities(connectivity.activeNetwork)?.let(::networkInfo)
            ?: NetworkInfo(NetworkKind.UNKNOWN, 0u, 0u, 0u)

    private fun networkInfo(caps: NetworkCapabilities) = NetworkInfo(
        kind = when {
            caps.hasTransport(NetworkCapabilities.TRANSPORT_WIFI) -> NetworkKind.WIFI
            caps.hasTransport(NetworkCapabilities.TRANSPORT_CELLULAR) -> NetworkKind.CELLULAR
            caps.hasTransport(NetworkCapabilities.TRANSPORT_ETHERNET) -> NetworkKind.ETHERNET
            else -> NetworkKind.UNKNOWN
        },
        // The platform's estimate; the core also measures the real rate on its links.
        uplinkKbps = caps.linkUpstreamBandwidthKbps.coerceAtLeast(0).toUInt(),
        downlinkKbps = caps.linkDownstreamBandwidthKbps.coerceAtLeast(0).toUInt(),
        maxAudioOutputs = 0u,
    )

    private companion object {
        const val TAG = "SpaceRoaming"
    }
}
