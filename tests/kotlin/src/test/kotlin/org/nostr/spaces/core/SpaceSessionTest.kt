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
private fun settings(relay: String, input: AudioInput, kind: ConnectionType = ConnectionType.WIFI) = SessionSettings(
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
        val subscription = listener.subscribe(object : SessionListener {
            override fun onEvent(event: SessionEvent) {
                events.add(event)
            }
        })
        try {
            // A subscription starts with the session's state.
            val first = events.poll(5, TimeUnit.SECONDS)
            assertTrue(first is SessionEvent.State, "first event: $first")
            val hostVoice = voiceId(host.publicKey())
            // The host's tone arrives and is played: ~1 s of it at 440 Hz.
            val heard = waitFor(15, "the host's voice") {
                listener.info().voices.firstOrNull { it.voice == hostVoice && it.frames >= 50uL && abs((it.frequencyHz ?: 0.0) - 440.0) < 15.0 }
            }
            assertTrue(abs(heard.frequencyHz!! - 440.0) < 15.0, "heard ${heard.frequencyHz} Hz")
            assertEquals(host.publicKey(), listener.info().parent)
            assertEquals(Role.LISTENER, listener.info().role)

            host.promoteSpeaker(listener.publicKey())
            val promoted = waitFor(10, "the promotion event") {
                events.poll(100, TimeUnit.MILLISECONDS)?.takeIf {
                    it is SessionEvent.RoleChanged && it.peer == listener.publicKey()
                }
            } as SessionEvent.RoleChanged
            assertEquals(Role.SPEAKER, promoted.role)
            // Its voice now reaches the host.
            val listenerVoice = voiceId(listener.publicKey())
            val spoken = waitFor(15, "the new speaker's voice at the host") {
                host.info().voices.firstOrNull { it.voice == listenerVoice && it.frames >= 50uL && abs((it.frequencyHz ?: 0.0) - 660.0) < 20.0 }
            }
            assertTrue(abs(spoken.frequencyHz!! - 660.0) < 20.0, "host heard ${spoken.frequencyHz} Hz")
        } finally {
            subscription.close()
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
        val first = CellRoamer(settings(relay.url(), AudioInput.Tone(440f), ConnectionType.CELLULAR), true, tracker)
        val second = CellRoamer(settings(relay.url(), AudioInput.None, ConnectionType.CELLULAR), false, tracker)
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

/** What an app needs besides audio: the user's own key, the space list, chat, core logs. */
class AppSurfaceTest {

    @Test
    fun theUsersKeyRoundTripsThroughItsNsecAndBadKeysAreRefused() {
        val made = Identity.generate()
        val restored = Identity.import(made.exportNsec())
        assertEquals(made.publicKey(), restored.publicKey())
        assertTrue(made.npub().startsWith("npub1"), made.npub())
        assertTrue(made.exportNsec().startsWith("nsec1"))
        assertThrows<SpacesException.InvalidKey> { Identity.import("nsec1notakey") }
    }

    /** A signer app as the app reaches it: the key is in an [Identity] the session never sees. */
    private class CountingSigner(private val key: Identity) : ExternalSigner {
        val calls = java.util.concurrent.atomic.AtomicInteger()
        override fun publicKey() = key.npub()
        override fun signEvent(unsignedEvent: String) = key.signEvent(unsignedEvent).also { calls.incrementAndGet() }
        override fun nip44Encrypt(peer: String, plaintext: String) = key.nip44Encrypt(peer, plaintext).also { calls.incrementAndGet() }
        override fun nip44Decrypt(peer: String, payload: String) = key.nip44Decrypt(peer, payload).also { calls.incrementAndGet() }
    }

    @Test
    fun aListenerSignedByAnExternalSignerHearsTheHost() = runBlocking {
        val relay = LocalRelay.start(null)
        val host = SpaceSession.host(settings(relay.url(), AudioInput.Tone(440f)), "signed", emptyList())
        val key = Identity.generate()
        val signer = CountingSigner(key)
        val listener = SpaceSession.joinSignedBy(settings(relay.url(), AudioInput.None), host.address(), UserSigner.external(signer))
        try {
            assertEquals(key.publicKey(), listener.publicKey())
            val hostVoice = voiceId(host.publicKey())
            var heard: VoiceInfo? = null
            for (i in 0 until 150) {
                heard = listener.info().voices.firstOrNull { it.voice == hostVoice && it.frames >= 50uL && abs((it.frequencyHz ?: 0.0) - 440.0) < 15.0 }
                if (heard != null) break
                Thread.sleep(100)
            }
            assertTrue(heard != null && abs(heard.frequencyHz!! - 440.0) < 15.0, "heard $heard")
            assertTrue(signer.calls.get() >= 3, "the signer signed, sealed and opened (${signer.calls.get()})")
        } finally {
            listener.leave()
            host.leave()
            relay.stop()
        }
        assertThrows<SpacesException.InvalidSettings> { runBlocking { UserSigner.bunker("bunker://nothex", 1_000uL) } }
        Unit
    }

    @Test
    fun aSpaceIsListedChatReachesTheOtherPhoneAndCoreLogsReachTheApp() = runBlocking {
        val lines = LinkedBlockingQueue<String>()
        initLogging("spaces_core=info", object : LogSink {
            override fun log(level: LogLevel, target: String, message: String) {
                lines.add("$level $target $message")
            }
        })
        val relay = LocalRelay.start(null)
        val me = Identity.generate()
        val hostSettings = settings(relay.url(), AudioInput.None).copy(secretKey = me.exportNsec())
        val host = SpaceSession.host(hostSettings, "listed space", emptyList())
        val listener = SpaceSession.join(settings(relay.url(), AudioInput.None), host.address())
        val chat = LinkedBlockingQueue<SessionEvent.Chat>()
        val subscription = host.subscribe(object : SessionListener {
            override fun onEvent(event: SessionEvent) {
                if (event is SessionEvent.Chat) chat.add(event)
            }
        })
        try {
            assertEquals(me.publicKey(), host.publicKey(), "the session runs as the user's key")

            val listed = browseSpaces(listOf(relay.url()), null, 3_600uL, 5_000uL)
                .firstOrNull { it.address == host.address() }
            assertTrue(listed != null, "the space is listed")
            assertEquals("listed space", listed!!.name)
            assertTrue(listed.playable)
            assertEquals(me.publicKey(), listed.host)

            listener.sendChat("hello from the JVM")
            val line = chat.poll(10, TimeUnit.SECONDS)
            assertEquals("hello from the JVM", line?.text)
            assertEquals(listener.publicKey(), line?.from)
            assertThrows<SpacesException.NotSent> { listener.sendChat("   ") }
            assertThrows<SpacesException.NotSent> { listener.sendChat("x".repeat(3_000)) }

            // Once cancelled, a subscription delivers nothing more.
            subscription.cancel()
            listener.sendChat("unheard")
            assertEquals(null, chat.poll(1, TimeUnit.SECONDS))

            assertTrue(lines.any { it.startsWith("INFO spaces_core") }, "core logs reached the app: ${lines.take(5)}")
        } finally {
            subscription.close()
            listener.leave()
            host.leave()
            relay.stop()
        }
        assertThrows<SpacesException.InvalidSettings> {
            initLogging("debug", object : LogSink {
                override fun log(level: LogLevel, target: String, message: String) {}
            })
        }
        Unit
    }
}
