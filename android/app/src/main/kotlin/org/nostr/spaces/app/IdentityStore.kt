package org.nostr.spaces.app

import android.content.SharedPreferences
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.util.Base64
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import org.nostr.spaces.core.Identity

/** Seals a secret for storage and opens it again. */
interface SecretProtector {
    /** The secret, sealed, as text. */
    fun seal(secret: String): String

    /** The secret again; throws when it cannot be opened (the key is gone). */
    fun open(sealed: String): String
}

/** AES-GCM under a key that never leaves the Android Keystore (hardware-backed where the phone has it). */
class KeystoreProtector(private val alias: String = "spaces-identity") : SecretProtector {
    private fun key(): SecretKey {
        val store = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (store.getKey(alias, null) as? SecretKey)?.let { return it }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        generator.init(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .build(),
        )
        return generator.generateKey()
    }

    override fun seal(secret: String): String {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding").apply { init(Cipher.ENCRYPT_MODE, key()) }
        val sealed = cipher.iv + cipher.doFinal(secret.toByteArray())
        return Base64.encodeToString(sealed, Base64.NO_WRAP)
    }

    override fun open(sealed: String): String {
        val bytes = Base64.decode(sealed, Base64.NO_WRAP)
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(128, bytes, 0, GCM_IV))
        return String(cipher.doFinal(bytes, GCM_IV, bytes.size - GCM_IV))
    }

    private companion object {
        const val GCM_IV = 12
    }
}

/**
 * The user's own Nostr key, the same in every space and every session: made on first use (or
 * imported), kept sealed in the app's preferences, never backed up (`allowBackup=false`).
 */
class IdentityStore(private val prefs: SharedPreferences, private val protector: SecretProtector) {

    /** The stored identity, else a new one, stored. Throws [IllegalStateException] when one
     *  is stored but cannot be opened: replacing it silently would change who the user is. */
    fun identity(): Identity {
        val sealed = prefs.getString(KEY, null) ?: return store(Identity.generate())
        val nsec = try {
            protector.open(sealed)
        } catch (e: Exception) {
            throw IllegalStateException("the stored key cannot be opened; import it again", e)
        }
        return Identity.import(nsec)
    }

    /** Replaces the identity with the user's own key (`nsec1…` or hex); a bad key changes nothing. */
    fun import(secret: String): Identity = store(Identity.import(secret))

    private fun store(identity: Identity): Identity {
        check(prefs.edit().putString(KEY, protector.seal(identity.exportNsec())).commit()) {
            "the key could not be stored"
        }
        return identity
    }

    private companion object {
        const val KEY = "identity.sealed"
    }
}
