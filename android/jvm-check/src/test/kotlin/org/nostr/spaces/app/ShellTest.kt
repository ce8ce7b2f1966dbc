package org.nostr.spaces.app

import android.Manifest
import android.content.Context
import android.location.Location
import android.media.AudioDeviceInfo
import android.media.AudioManager
import android.os.Build
import android.location.LocationManager
import android.net.ConnectivityManager
import android.net.NetworkCapabilities
import android.os.Handler
import android.os.Looper
import android.os.SystemClock
import java.time.Duration
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.nostr.spaces.core.CellMove
import org.nostr.spaces.core.GeoKeyInfo
import org.nostr.spaces.core.NetworkInfo
import org.nostr.spaces.core.ConnectionType
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.shadows.AudioDeviceInfoBuilder
import org.robolectric.shadows.ShadowConnectivityManager
import org.robolectric.shadows.ShadowNetwork
import org.robolectric.shadows.ShadowNetworkCapabilities
import org.robolectric.shadows.ShadowToast

/** The platform does what the framework does, not what Robolectric's lenient shadow does:
 *  unregistering a callback never registered throws. */
@Implements(ConnectivityManager::class)
class StrictConnectivityManager : ShadowConnectivityManager() {
    @Implementation
    override fun unregisterNetworkCallback(callback: ConnectivityManager.NetworkCallback) {
        require(callback in networkCallbacks) { "NetworkCallback was not registered" }
        super.unregisterNetworkCallback(callback)
    }
}

/** The shell's pieces against the Android API, at the minSdk and the target SDK. */
@RunWith(RobolectricTestRunner::class)
@Config(shadows = [StrictConnectivityManager::class])
class ShellTest {
    private val main = Handler(Looper.getMainLooper())

    private fun caps(transport: Int, upKbps: Int, metered: Boolean): NetworkCapabilities {
        val caps = ShadowNetworkCapabilities.newInstance()
        shadowOf(caps).addTransportType(transport)
        shadowOf(caps).setLinkUpstreamBandwidthKbps(upKbps)
        shadowOf(caps).setLinkDownstreamBandwidthKbps(20_000)
        if (!metered) shadowOf(caps).addCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED)
        return caps
    }

    @Test
    fun networkChangesAreDebouncedAndRepeatsDropped() {
        val connectivity = requireNotNull(app().getSystemService(ConnectivityManager::class.java))
        val seen = mutableListOf<NetworkInfo>()
        val watch = NetworkWatch(connectivity, { false }, main, { seen += it })
        // Stopping what never started is safe (the framework would throw).
        watch.stop()
        watch.start()
        val network = ShadowNetwork.newInstance(7)
        val callbacks = shadowOf(connectivity).networkCallbacks
        assertEquals(1, callbacks.size)
        // A hand-over: three changes within a second.
        for (up in listOf(1_000, 2_000, 3_000)) {
            callbacks.forEach { it.onCapabilitiesChanged(network, caps(NetworkCapabilities.TRANSPORT_CELLULAR, up, metered = true)) }
            shadowOf(Looper.getMainLooper()).idleFor(Duration.ofMillis(300))
        }
        assertEquals("nothing before the network settles", 0, seen.size)
        shadowOf(Looper.getMainLooper()).idleFor(Duration.ofMillis(NetworkWatch.DEBOUNCE_MS))
        assertEquals(1, seen.size)
        assertEquals(ConnectionType.CELLULAR, seen[0].kind)
        assertEquals(3_000u, seen[0].uplinkKbps)
        assertEquals("metered: four relayed streams at most", NetworkPolicy.METERED_OUTPUTS, seen[0].maxAudioOutputs)
        // The same again: no ICE restart for nothing.
        callbacks.forEach { it.onCapabilitiesChanged(network, caps(NetworkCapabilities.TRANSPORT_CELLULAR, 3_000, metered = true)) }
        shadowOf(Looper.getMainLooper()).idleFor(Duration.ofMillis(NetworkWatch.DEBOUNCE_MS * 2))
        assertEquals(1, seen.size)
        // Into Wi-Fi.
        callbacks.forEach { it.onCapabilitiesChanged(network, caps(NetworkCapabilities.TRANSPORT_WIFI, 10_000, metered = false)) }
        shadowOf(Looper.getMainLooper()).idleFor(Duration.ofMillis(NetworkWatch.DEBOUNCE_MS * 2))
        assertEquals(2, seen.size)
        assertEquals(ConnectionType.WIFI, seen[1].kind)
        assertEquals(0u, seen[1].maxAudioOutputs)
        watch.stop()
        assertEquals(0, shadowOf(connectivity).networkCallbacks.size)
        watch.stop()
    }

    @Test
    fun callAudioPrefersAHeadsetFollowsTheUsersPickAndGivesTheAudioBack() {
        val audio = requireNotNull(app().getSystemService(AudioManager::class.java))
        val call = CallAudio(app(), audio, main) {}
        call.start()
        assertEquals(AudioManager.MODE_IN_COMMUNICATION, audio.mode)
        if (Build.VERSION.SDK_INT >= 31) {
            val speaker = AudioDeviceInfoBuilder.newBuilder().setType(AudioDeviceInfo.TYPE_BUILTIN_SPEAKER).build()
            val headset = AudioDeviceInfoBuilder.newBuilder().setType(AudioDeviceInfo.TYPE_WIRED_HEADSET).build()
            shadowOf(audio).addAvailableCommunicationDevice(speaker, true)
            shadowOf(audio).addAvailableCommunicationDevice(headset, true)
            shadowOf(Looper.getMainLooper()).idle()
            assertEquals("a plugged headset is taken", AudioDeviceInfo.TYPE_WIRED_HEADSET, audio.communicationDevice?.type)
            assertEquals(listOf("Speaker", "Headset"), call.routes().map { it.name })
            assertTrue(call.choose(AudioDeviceInfo.TYPE_BUILTIN_SPEAKER))
            assertEquals("the user's pick", AudioDeviceInfo.TYPE_BUILTIN_SPEAKER, audio.communicationDevice?.type)
            assertTrue("no such route", !call.choose(AudioDeviceInfo.TYPE_USB_HEADSET))
        } else {
            assertEquals("before API 31 the platform routes", emptyList<CallAudio.Route>(), call.routes())
        }
        call.stop()
        assertEquals(AudioManager.MODE_NORMAL, audio.mode)
    }

    @Test
    fun lowBatteryCapsRelayingHarderThanAMeteredNetwork() {
        val info = NetworkPolicy.info(ConnectionType.CELLULAR, 2_000, 10_000, metered = true, lowBattery = true)
        assertEquals(NetworkPolicy.LOW_BATTERY_OUTPUTS, info.maxAudioOutputs)
        // No platform estimate: unknown, never "cannot relay" (the core measures).
        assertEquals(0u, NetworkPolicy.info(ConnectionType.UNKNOWN, -1, 0, metered = false, lowBattery = false).uplinkKbps)
    }

    @Test
    fun theActivityStopsBeforeAnyPermissionWasGrantedWithoutThrowing() {
        // Nothing granted, the user leaves at once: a crash on devices before.
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup()
        activity.pause().stop().destroy()
    }

    @Test
    fun partialGrantsKeepWhatStillWorks() {
        shadowOf(app()).grantPermissions(Manifest.permission.ACCESS_COARSE_LOCATION)
        val plan = PermissionPlan.of({ app().checkSelfPermission(it) == 0 })
        assertTrue("listening needs nothing", !plan.canSpeak && !plan.followsCell)
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        activity.findViewsWithText("Host a space").performClick()
        assertEquals("Hosting needs the microphone", ShadowToast.getTextOfLatestToast())
        activity.findViewsWithText("Nearby").performClick()
        assertEquals("Nearby spaces need precise location", ShadowToast.getTextOfLatestToast())
    }

    @Test
    fun theCellWatcherSurvivesProviderChangesAndReportsTheCell() {
        shadowOf(app()).grantPermissions(Manifest.permission.ACCESS_FINE_LOCATION)
        val locations = requireNotNull(app().getSystemService(LocationManager::class.java))
        val moves = mutableListOf<Pair<CellMove, GeoKeyInfo>>()
        val watcher = CellWatcher(locations, { move, key -> synchronized(moves) { moves += move to key } })
        watcher.start()
        // Abstract before API 30: the platform calls them at once on some phones.
        shadowOf(locations).setProviderEnabled(LocationManager.FUSED_PROVIDER, false)
        shadowOf(locations).setProviderEnabled(LocationManager.FUSED_PROVIDER, true)
        val fix = Location(LocationManager.FUSED_PROVIDER).apply {
            latitude = 48.853
            longitude = -2.341
            accuracy = 8f
            elapsedRealtimeNanos = SystemClock.elapsedRealtimeNanos()
            time = System.currentTimeMillis()
        }
        shadowOf(locations).simulateLocation(fix)
        val (move, key) = waitFor(10, "the cell") { synchronized(moves) { moves.firstOrNull() } }
        assertEquals("48.85", move.to.latLabel)
        assertEquals("-2.34", move.to.lonLabel)
        assertTrue(key.npub.startsWith("npub1"))
        watcher.stop()
    }

    @Test
    fun theUsersKeyIsKeptAcrossSessionsAndAnUnreadableOneIsNeverReplacedSilently() {
        val prefs = app().getSharedPreferences("identity-test", Context.MODE_PRIVATE)
        val first = IdentityStore(prefs, ClearProtector).identity()
        val again = IdentityStore(prefs, ClearProtector).identity()
        assertEquals(first.publicKey(), again.publicKey())
        val other = org.nostr.spaces.core.Identity.generate()
        assertEquals(other.publicKey(), IdentityStore(prefs, ClearProtector).import(other.exportNsec()).publicKey())
        assertThrows(org.nostr.spaces.core.SpacesException.InvalidKey::class.java) {
            IdentityStore(prefs, ClearProtector).import("nsec1broken")
        }
        assertEquals("a bad import changes nothing", other.publicKey(), IdentityStore(prefs, ClearProtector).identity().publicKey())
        val lost = object : SecretProtector {
            override fun seal(secret: String) = error("unused")
            override fun open(sealed: String): String = throw java.security.GeneralSecurityException("key invalidated")
        }
        assertThrows(IllegalStateException::class.java) { IdentityStore(prefs, lost).identity() }
        assertNotEquals(first.publicKey(), other.publicKey())
    }
}

private fun android.app.Activity.findViewsWithText(text: String): android.view.View {
    val found = ArrayList<android.view.View>()
    window.decorView.findViewsWithText(found, text, android.view.View.FIND_VIEWS_WITH_TEXT)
    return found.first()
}
