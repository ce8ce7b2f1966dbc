package org.nostr.spaces.app

import android.content.Context
import org.nostr.spaces.core.IceServerInfo

/**
 * The user's relays and ICE servers, kept in the app's preferences, with defaults: public
 * relays that carry Nostr Spaces events, and a public STUN server so that peers behind
 * ordinary NATs find each other. TURN needs credentials, which the user or their community
 * gives: `turn:HOST:PORT` with a user name and password.
 */
data class AppConfig(val relays: List<String>, val iceServers: List<IceServerInfo>) {

    /** Stores this configuration. */
    fun save(context: Context) {
        prefs(context).edit()
            .putString(RELAYS, relays.joinToString("\n"))
            .putString(ICE, iceServers.joinToString("\n") { listOf(it.url, it.username, it.credential).joinToString("\t") })
            .apply()
    }

    companion object {
        private const val FILE = "spaces"
        private const val RELAYS = "relays"
        private const val ICE = "iceServers"

        /** Relays used until the user sets others. */
        val DEFAULT_RELAYS = listOf("wss://relay.copylaradio.com", "wss://relay.damus.io", "wss://nos.lol")

        /** ICE servers used until the user sets others. */
        val DEFAULT_ICE_SERVERS = listOf(IceServerInfo("stun:stun.l.google.com:19302", "", ""))

        private fun prefs(context: Context) = context.getSharedPreferences(FILE, Context.MODE_PRIVATE)

        /** The stored configuration, or the defaults. */
        fun of(context: Context): AppConfig {
            val prefs = prefs(context)
            val relays = prefs.getString(RELAYS, null)?.lines()?.filter { it.isNotBlank() }
            val ice = prefs.getString(ICE, null)?.lines()?.filter { it.isNotBlank() }?.map { line ->
                val parts = line.split('\t')
                IceServerInfo(parts[0], parts.getOrElse(1) { "" }, parts.getOrElse(2) { "" })
            }
            return AppConfig(relays ?: DEFAULT_RELAYS, ice ?: DEFAULT_ICE_SERVERS)
        }
    }
}
