package org.nostr.spaces.app

import android.app.Application
import android.os.Looper
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking
import org.nostr.spaces.core.AudioInput
import org.nostr.spaces.core.AudioOutput
import org.nostr.spaces.core.LocalRelay
import org.nostr.spaces.core.NetworkInfo
import org.nostr.spaces.core.ConnectionType
import org.nostr.spaces.core.SessionSettings
import org.nostr.spaces.core.SpaceSession
import org.nostr.spaces.core.VoiceInfo
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf

/** The app under test. */
fun app(): Application = RuntimeEnvironment.getApplication()

/**
 * Waits for `probe` to give a value, running the main looper meanwhile (the service posts
 * to it): a failure bound, not a speed assertion.
 */
fun <T> waitFor(seconds: Long, what: String, probe: () -> T?): T {
    val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds)
    while (System.nanoTime() < deadline) {
        shadowOf(Looper.getMainLooper()).idle()
        probe()?.let { return it }
        Thread.sleep(50)
    }
    error("timed out waiting for $what")
}

/** The JVM has no Android Keystore: the key is kept as it is (the sealing is not under test here). */
object ClearProtector : SecretProtector {
    override fun seal(secret: String) = "clear:$secret"
    override fun open(sealed: String) = sealed.removePrefix("clear:").also { require(it != sealed) }
}

/** A host phone outside the app: the core's own API, playing a tone. */
fun hostSettings(relay: String, hz: Float) = SessionSettings(
    relays = listOf(relay),
    name = "host",
    secretKey = null,
    network = NetworkInfo(ConnectionType.WIFI, 5_000u, 20_000u, 0u),
    input = AudioInput.Tone(hz),
    output = AudioOutput.SILENT,
    iceServers = emptyList(),
)

/**
 * A host phone playing 440 Hz on an in-process relay, and the app configured for that relay
 * (no ICE servers: everything is on this machine), with its key sealed in the clear.
 */
class ToneHost(name: String) : AutoCloseable {
    val relay: LocalRelay
    val host: SpaceSession

    init {
        SpaceService.protector = ClearProtector
        relay = runBlocking { LocalRelay.start(null) }
        AppConfig(listOf(relay.url()), emptyList()).save(app())
        host = runBlocking { SpaceSession.host(hostSettings(relay.url(), 440f), name, emptyList()) }
    }

    override fun close() = runBlocking {
        host.leave()
        relay.stop()
    }
}

/**
 * Waits until `session` has played at least a second of `voice` and its tone, measured over
 * every frame played so far, is `hz` ± 15 Hz: the first frames (the jitter buffer filling, a
 * loaded machine's late ticks) may be concealment, which the running measure outgrows. Fails
 * with the last measure.
 */
fun waitForTone(seconds: Long, session: () -> SpaceSession?, voice: UInt, hz: Double): VoiceInfo {
    var last: VoiceInfo? = null
    return try {
        waitFor(seconds, "$hz Hz") {
            last = session()?.info()?.voices?.firstOrNull { it.voice == voice }
            last?.takeIf { it.frames >= 50uL && kotlin.math.abs((it.frequencyHz ?: 0.0) - hz) < 15.0 }
        }
    } catch (e: IllegalStateException) {
        throw AssertionError("never heard $hz Hz: last ${last?.frequencyHz} Hz over ${last?.frames} frames", e)
    }
}
