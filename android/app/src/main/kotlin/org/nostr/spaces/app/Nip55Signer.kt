package org.nostr.spaces.app

import android.content.ContentResolver
import android.content.Context
import android.content.Intent
import android.database.Cursor
import android.net.Uri
import org.json.JSONObject
import org.nostr.spaces.core.ExternalSigner
import org.nostr.spaces.core.SpacesException

/**
 * The user's key in a NIP-55 signer app (Amber and others): sessions are signed through the
 * signer's content provider, without the app switch, once the user let this app sign without
 * asking ("remember my choice" at login). The core calls it on a background thread.
 */
class Nip55Signer(
    private val resolver: ContentResolver,
    /** The signer app's package, as its login answer named it. */
    private val signerPackage: String,
    /** The user's public key (hex or npub), as its login answer named it. */
    private val user: String,
) : ExternalSigner {

    override fun publicKey(): String = user

    override fun signEvent(unsignedEvent: String): String = ask("SIGN_EVENT", unsignedEvent, "") { cursor ->
        cursor.text("event")?.takeIf { it.isNotBlank() }
            // Some signers answer with the signature alone.
            ?: cursor.text("result")?.let { signature -> JSONObject(unsignedEvent).put("sig", signature).toString() }
    }

    override fun nip44Encrypt(peer: String, plaintext: String): String =
        ask("NIP44_ENCRYPT", plaintext, peer) { it.text("result") }

    override fun nip44Decrypt(peer: String, payload: String): String =
        ask("NIP44_DECRYPT", payload, peer) { it.text("result") }

    private fun ask(method: String, data: String, peer: String, read: (Cursor) -> String?): String {
        val uri = Uri.parse("content://$signerPackage.$method")
        val cursor = resolver.query(uri, arrayOf(data, peer, user), null, null, null)
            ?: throw SpacesException.Signer(
                "$signerPackage did not answer $method: open it and let this app sign without asking",
            )
        cursor.use {
            if (it.getColumnIndex("rejected") >= 0) throw SpacesException.Signer("$signerPackage refused $method")
            if (!it.moveToFirst()) throw SpacesException.Signer("$signerPackage gave no answer to $method")
            return read(it) ?: throw SpacesException.Signer("$signerPackage's answer to $method has no result")
        }
    }

    private fun Cursor.text(column: String): String? = getColumnIndex(column).takeIf { it >= 0 }?.let(::getString)

    companion object {
        private const val PREFS = "signer"

        /** The login request: the signer app answers with the user's key and its package. */
        fun loginIntent(): Intent = Intent(Intent.ACTION_VIEW, Uri.parse("nostrsigner:"))
            .putExtra("type", "get_public_key")
            // Ask once for the kinds a space signs, so that later requests need no app switch.
            .putExtra("permissions", """[{"type":"sign_event"},{"type":"nip44_encrypt"},{"type":"nip44_decrypt"}]""")

        /** Keeps the login answer (`result`: the key, `package`: the signer). False when incomplete. */
        fun remember(context: Context, answer: Intent?): Boolean {
            val key = answer?.getStringExtra("result") ?: return false
            val pkg = answer.getStringExtra("package") ?: return false
            context.getSharedPreferences(PREFS, Context.MODE_PRIVATE).edit()
                .putString("package", pkg).putString("user", key).apply()
            return true
        }

        /** Stops using the signer app: sessions go back to the app's own key. */
        fun forget(context: Context) {
            context.getSharedPreferences(PREFS, Context.MODE_PRIVATE).edit().clear().apply()
        }

        /** The signer the user chose, or null to use the app's own key. */
        fun of(context: Context): Nip55Signer? {
            val prefs = context.getSharedPreferences(PREFS, Context.MODE_PRIVATE)
            val pkg = prefs.getString("package", null) ?: return null
            val user = prefs.getString("user", null) ?: return null
            return Nip55Signer(context.contentResolver, pkg, user)
        }
    }
}
