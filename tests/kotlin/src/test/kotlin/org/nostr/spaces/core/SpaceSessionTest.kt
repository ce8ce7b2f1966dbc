package org.nostr.spaces.core

import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import kotlin.math.abs
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Settings of a test phone on one relay, playing nothing. */
private fun settings(relay: String, input: AudioInput, kind: NetworkKind = NetworkKind.WIFI) = SessionSettings(
    relays = listOf(relay),
    name = "jvm",
    secretKey = null,
    network = NetworkInfo(kind, 5_000u, 20_000u, 0u),
    input = input,
    output = AudioOutput.SILENT,
    iceServers = emptyList(),
)

/**
 * A space as the apps run it, through the generated Kotlin: a host and a listener on an
 * in-process relay, real WebRTC and Opus underneath, events back through a Kotlin listener.
 */
class SpaceSessionTest {

    private fun <T> waitFor(seconds: Long, what: String, probe: () -> T?): T {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds)
        while (System.nanoTime() < deadline) {
            probe()?.let { return it }
            Thread.sleep(100)
        }
        error("timed out waiting for $what")
    }

    @Test
    fun aListenerHearsTheHostAndIsPromotedThroughKotlin() = runBlocking {
        val relay = LocalRelay.start(null)
        val host = SpaceSession.host(settings(relay.url(), AudioInput.Tone(440f)), "jvm space", listOf("48.85,-2.34"))
        val listener = SpaceSession.join(settings(relay.url(), AudioInput.Tone(660f)), host.address())
        val events = LinkedBlockingQueue<SessionEvent>()
        listener.setListener(object : SessionListener {
            override fun onEvent(event: SessionEvent) {
                events.add(event)
            }
        })
        try {
            val hostVoice = voiceId(host.publicKey())
            // The host's tone arrives and is played: ~1 s of it at 440 Hz.
            val heard = waitFor(15, "the host's voice") {
                listener.info().voices.firstOrNull { it.voice == hostVoice && it.frames >= 50uL }
            }
            assertTrue(abs(heard.frequencyHz!! - 440.0) < 15.0, "heard ${heard.frequencyHz} Hz")
            assertEquals(host.publicKey(), listener.info().parent)
            assertEquals(SpaceRole.LISTENER, listener.info().role)

            host.promoteSpeaker(listener.publicKey())
            val promoted = waitFor(10, "the promotion event") {
                events.poll(100, TimeUnit.MILLISECONDS)?.takeIf {
                    it is SessionEvent.RoleChanged && it.peer == listener.publicKey()
                }
            } as SessionEvent.RoleChanged
            assertEquals(SpaceRole.SPEAKER, promoted.role)
            // Its voice now reaches the host.
            val listenerVoice = voiceId(listener.publicKey())
            val spoken = waitFor(15, "the new speaker's voice at the host") {
                host.info().voices.firstOrNull { it.voice == listenerVoice && it.frames >= 50uL }
            }
            assertTrue(abs(spoken.frequencyHz!! - 660.0) < 20.0, "host heard ${spoken.frequencyHz} Hz")
        } finally {
            listener.leave()
            host.leave()
            relay.stop()
        }
        // A finished session refuses further calls with a typed error.
        assertThrows<SpacesException.Stopped> { listener.info() }
        assertThrows<SpacesException.InvalidSpace> {
            runBlocking { SpaceSession.join(settings(relay.url(), AudioInput.None), "30312:nothex:id") }
        }
        Unit
    }
}

/** Auto-join by cell as the apps drive it: GPS fixes in, the cell's space out. */
class CellRoamerTest {

    @Test
    fun theFirstPhoneOpensTheCellsSpaceTheSecondJoinsItThenWalksAway() = runBlocking {
        val relay = LocalRelay.start(null)
        val tracker = defaultTrackerSettings()
        val first = CellRoamer(settings(relay.url(), AudioInput.Tone(440f), NetworkKind.CELLULAR), true, tracker)
        val second = CellRoamer(settings(relay.url(), AudioInput.None, NetworkKind.CELLULAR), false, tracker)
        try {
            val opened = first.fix(GpsFix(48.853, -2.341, 8.0, 0uL))!!
            assertTrue(opened.hosting)
            assertEquals("48.85", opened.cell.latLabel)
            // 300 m away, same UMAP cell: the second phone finds and joins the first one's space.
            val joined = second.fix(GpsFix(48.8549, -2.3449, 8.0, 0uL))!!
            assertEquals(opened.address, joined.address)
            assertTrue(!joined.hosting)
            val session = second.session()!!
            var heard = 0uL
            for (i in 0 until 150) {
                heard = session.info().packetsReceived
                if (heard > 50uL) break
                Thread.sleep(100)
            }
            assertTrue(heard > 50uL, "received $heard packets")
            // A fix a few metres on changes nothing; a bad one is refused with a typed error.
            assertEquals(null, second.fix(GpsFix(48.8550, -2.3448, 8.0, 1_000uL)))
            assertThrows<SpacesException.InvalidCoordinate> {
                runBlocking { second.fix(GpsFix(95.0, 0.0, 8.0, 2_000uL)) }
            }
            // Far away: an empty cell, and this phone may not host: it leaves and waits.
            val empty = second.fix(GpsFix(43.6047, 1.4442, 8.0, 3_000uL))!!
            assertEquals(null, empty.address)
            assertEquals("43.60", empty.cell.latLabel)
            assertEquals(null, second.session())
        } finally {
            second.leave()
            first.leave()
            relay.stop()
        }
        Unit
    }
}
