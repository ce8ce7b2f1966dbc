package org.nostr.spaces.app

import android.app.Activity
import android.content.ContentProvider
import android.content.ContentValues
import android.content.Intent
import android.database.Cursor
import android.database.MatrixCursor
import android.net.Uri
import java.util.concurrent.ConcurrentLinkedQueue
import kotlinx.coroutines.runBlocking
import org.json.JSONObject
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.nostr.spaces.core.Identity
import org.nostr.spaces.core.LocalRelay
import org.nostr.spaces.core.SpaceSession
import org.nostr.spaces.core.SpacesException
import org.nostr.spaces.core.voiceId
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf

/**
 * A NIP-55 signer app as its content provider answers: the user's key is here, never in the
 * Spaces app. It answers SIGN_EVENT with the signature alone, as some signers do.
 */
class SignerAppProvider : ContentProvider() {
    override fun onCreate() = true

    override fun query(uri: Uri, projection: Array<out String>?, selection: String?, args: Array<out String>?, sort: String?): Cursor? {
        val method = uri.authority!!.substringAfterLast('.')
        val (data, peer, user) = projection!!.toList()
        calls += method
        if (rejecting || user != key.publicKey()) return MatrixCursor(arrayOf("rejected")).apply { addRow(arrayOf("1")) }
        val result = when (method) {
            "SIGN_EVENT" -> JSONObject(key.signEvent(data)).getString("sig")
            "NIP44_ENCRYPT" -> key.nip44Encrypt(peer, data)
            "NIP44_DECRYPT" -> key.nip44Decrypt(peer, data)
            else -> return null
        }
        return MatrixCursor(arrayOf("result")).apply { addRow(arrayOf(result)) }
    }

    override fun getType(uri: Uri): String? = null
    override fun insert(uri: Uri, values: ContentValues?): Uri? = throw UnsupportedOperationException()
    override fun delete(uri: Uri, selection: String?, args: Array<out String>?) = 0
    override fun update(uri: Uri, values: ContentValues?, selection: String?, args: Array<out String>?) = 0

    companion object {
        const val PACKAGE = "org.example.signer"
        val key: Identity = Identity.generate()
        val calls = ConcurrentLinkedQueue<String>()
        @Volatile var rejecting = false
    }
}

/** Sessions signed by the user's key in a signer app (NIP-55), through the app's own path. */
@RunWith(RobolectricTestRunner::class)
class SignerTest {
    private lateinit var space: ToneHost
    private val host get() = space.host

    @Before
    fun setUp() {
        for (method in listOf("SIGN_EVENT", "NIP44_ENCRYPT", "NIP44_DECRYPT")) {
            Robolectric.setupContentProvider(SignerAppProvider::class.java, "${SignerAppProvider.PACKAGE}.$method")
        }
        SignerAppProvider.calls.clear()
        SignerAppProvider.rejecting = false
        space = ToneHost("signed space")
    }

    @After
    fun tearDown() {
        Nip55Signer.forget(app())
        space.close()
    }

    @Test
    fun theLoginAnswerIsKeptAndASessionIsSignedByTheSignerApp() {
        // The login: the activity asks the signer app, which answers with the key and its package.
        val activity = Robolectric.buildActivity(MainActivity::class.java).setup().get()
        textButton(activity, "Sign with a signer app").performClick()
        val asked = shadowOf(activity).nextStartedActivityForResult
        assertEquals(Uri.parse("nostrsigner:"), asked.intent.data)
        assertEquals("get_public_key", asked.intent.getStringExtra("type"))
        shadowOf(activity).receiveResult(
            asked.intent,
            Activity.RESULT_OK,
            Intent().putExtra("result", SignerAppProvider.key.publicKey()).putExtra("package", SignerAppProvider.PACKAGE),
        )
        assertTrue(Nip55Signer.of(app()) != null)

        // A space joined through the service: every event signed, every SDP sealed and opened
        // by the signer app.
        val controller = Robolectric.buildService(
            SpaceService::class.java,
            SpaceService.intent(app(), SpaceService.ACTION_JOIN).putExtra(SpaceService.EXTRA_ADDRESS, host.address()),
        ).create().startCommand(0, 1)
        val service = controller.get()
        val hostVoice = voiceId(host.publicKey())
        waitForTone(20, { service.session() }, hostVoice, 440.0)
        assertEquals("the session is the signer's key", SignerAppProvider.key.publicKey(), service.session()?.publicKey())
        val calls = SignerAppProvider.calls.toSet()
        assertTrue("signed, sealed and opened by the signer app: $calls", calls.containsAll(listOf("SIGN_EVENT", "NIP44_ENCRYPT", "NIP44_DECRYPT")))
        assertNull("no key of the app's own made", app().getSharedPreferences("identity", 0).getString("identity.sealed", null))
        service.onStartCommand(SpaceService.intent(app(), SpaceService.ACTION_LEAVE), 0, 2)
        waitFor(10, "the service to stop") { shadowOf(service).isStoppedBySelf.takeIf { it } }
    }

    @Test
    fun aRefusalIsATypedErrorAndAnAbsentSignerSaysWhatToDo() {
        val signer = Nip55Signer(app().contentResolver, SignerAppProvider.PACKAGE, SignerAppProvider.key.publicKey())
        SignerAppProvider.rejecting = true
        val refused = runCatching { signer.nip44Encrypt(Identity.generate().publicKey(), "x") }.exceptionOrNull()
        assertTrue("$refused", refused is SpacesException.Signer && refused.message.orEmpty().contains("refused"))
        val absent = Nip55Signer(app().contentResolver, "org.example.absent", SignerAppProvider.key.publicKey())
        val missing = runCatching { absent.signEvent("{}") }.exceptionOrNull()
        assertTrue("$missing", missing is SpacesException.Signer && missing.message.orEmpty().contains("did not answer"))
    }
}

private fun textButton(activity: Activity, text: String): android.view.View {
    val found = ArrayList<android.view.View>()
    activity.window.decorView.findViewsWithText(found, text, android.view.View.FIND_VIEWS_WITH_TEXT)
    return found.first()
}
