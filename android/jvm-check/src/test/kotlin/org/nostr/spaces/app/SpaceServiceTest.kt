package org.nostr.spaces.app

import android.Manifest
import android.content.ComponentName
import android.content.Intent
import android.os.Looper
import android.view.View
import android.view.ViewGroup
import android.widget.TextView
import android.media.AudioManager
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.nostr.spaces.core.LocalRelay
import org.nostr.spaces.core.Role
import org.nostr.spaces.core.SpaceSession
import org.nostr.spaces.core.voiceId
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.shadows.ShadowLog

/**
 * The app's own path to a space: the activity starts [SpaceService], whose session joins a
 * host on an in-process relay over real WebRTC and Opus, and plays through the app's audio
 * set-up. The space outlives the activity, and the notification's Leave ends it.
 */
@RunWith(RobolectricTestRunner::class)
class SpaceServiceTest {
    private lateinit var space: ToneHost
    private val host get() = space.host

    @Before
    fun setUp() {
        space = ToneHost("tone space")
    }

    @After
    fun tearDown() = space.close()

    private fun startService(action: String, extras: Intent.() -> Unit = {}) =
        Robolectric.buildService(SpaceService::class.java, SpaceService.intent(app(), action).apply(extras))
            .create()
            .startCommand(0, 1)

    @Test
    fun aJoinedSpacePlaysTheHostsToneOutlivesTheActivityAndLeavesFromTheNotification() {
        shadowOf(app()).grantPermissions(Manifest.permission.RECORD_AUDIO)
        val controller = startService(SpaceService.ACTION_JOIN) {
            putExtra(SpaceService.EXTRA_ADDRESS, host.address())
            putExtra(SpaceService.EXTRA_NAME, "tone space")
        }
        val service = controller.get()
        val shadow = shadowOf(service)

        // Foreground at once, with Mute and Leave in the notification.
        val notification = requireNotNull(shadow.lastForegroundNotification) { "no foreground notification" }
        assertEquals(listOf("Mute", "Leave"), notification.actions.map { it.title.toString() })

        // Call audio: focus for voice communication, communication mode.
        val audio = requireNotNull(app().getSystemService(AudioManager::class.java))
        assertEquals(AudioManager.MODE_IN_COMMUNICATION, audio.mode)
        assertNotNull(shadowOf(audio).lastAudioFocusRequest)

        // The host's tone, decoded and played by the service's session.
        val hostVoice = voiceId(host.publicKey())
        val heard = waitForTone(20, { service.session() }, hostVoice, 440.0)
        // The core's own logs reach logcat.
        assertTrue(
            "core lines in logcat",
            ShadowLog.getLogsForTag(CoreLog.TAG).any { it.msg.startsWith("spaces_core") },
        )
        val state = waitFor(10, "the session's state") { service.state.takeIf { it.role != null } }
        assertEquals(Role.LISTENER, state.role)
        assertEquals(host.address(), state.address)

        // The screen comes and goes (rotation, screen off): it shows the service's state at
        // once, and the space plays on without it.
        shadowOf(app()).setComponentNameAndServiceForBindService(
            ComponentName(app(), SpaceService::class.java),
            service.onBind(SpaceService.intent(app(), SpaceService.ACTION_JOIN)),
        )
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup()
        shadowOf(Looper.getMainLooper()).idle()
        assertTrue("the screen shows the space", textOf(activity.get().window.decorView).contains("tone space"))
        activity.recreate()
        shadowOf(Looper.getMainLooper()).idle()
        assertTrue("and again after a rotation", textOf(activity.get().window.decorView).contains("tone space"))
        activity.pause().stop().destroy()
        val before = heard.frames
        val later = waitFor(10, "more frames after the activity went") {
            service.session()?.info()?.voices?.firstOrNull { it.voice == hostVoice && it.frames > before + 25uL }
        }
        assertTrue(later.frames > before)

        // Headphones out: our voice is muted.
        app().sendBroadcast(Intent(AudioManager.ACTION_AUDIO_BECOMING_NOISY))
        waitFor(5, "muted by the noisy broadcast") { service.state.takeIf { it.muted } }

        // The notification's Leave: the session ends, the audio is given back, the service stops.
        service.onStartCommand(SpaceService.intent(app(), SpaceService.ACTION_LEAVE), 0, 2)
        waitFor(10, "the service to stop") { shadow.isStoppedBySelf.takeIf { it } }
        assertNull(service.session())
        assertEquals(AudioManager.MODE_NORMAL, audio.mode)
        assertNull(service.state.address)
    }

    @Test
    fun withoutTheMicrophoneTheAppStillListens() {
        // Microphone refused: a partial grant. Listening needs no permission at all.
        val controller = startService(SpaceService.ACTION_JOIN) {
            putExtra(SpaceService.EXTRA_ADDRESS, host.address())
        }
        val service = controller.get()
        val hostVoice = voiceId(host.publicKey())
        waitFor(20, "the host's tone without a microphone") {
            service.session()?.info()?.voices?.firstOrNull { it.voice == hostVoice && it.frames >= 25uL }
        }
        assertTrue(!PermissionPlan.of({ app().checkSelfPermission(it) == 0 }).canSpeak)
        service.onStartCommand(SpaceService.intent(app(), SpaceService.ACTION_LEAVE), 0, 2)
        waitFor(10, "the service to stop") { shadowOf(service).isStoppedBySelf.takeIf { it } }
    }
}

/** Every text shown under `view`. */
fun textOf(view: View): String = when (view) {
    is TextView -> view.text.toString()
    is ViewGroup -> (0 until view.childCount).joinToString("\n") { textOf(view.getChildAt(it)) }
    else -> ""
}
