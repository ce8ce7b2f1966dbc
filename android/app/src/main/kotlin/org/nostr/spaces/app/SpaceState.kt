package org.nostr.spaces.app

import org.nostr.spaces.core.SessionEvent
import org.nostr.spaces.core.Role

/** One line of the space's chat, as the screen shows it. */
data class ChatLine(val from: String, val text: String)

/**
 * What the space screen shows, owned by [SpaceService] and rebuilt from the core's events by
 * [after]: platform-free, so that it survives the activity (rotation, screen off) and is tested
 * on the JVM.
 */
data class SpaceState(
    /** The space's address (`30312:…`), or null when in no space. */
    val address: String? = null,
    /** The space's name, as listed or as we named it. */
    val name: String = "",
    /** Our key (hex), once the session runs. */
    val me: String? = null,
    /** We opened the space. */
    val hosting: Boolean = false,
    /** Starting: the session is not running yet. */
    val starting: Boolean = false,
    /** Our role; null until the session runs. */
    val role: Role? = null,
    /** Our voice is muted (by us, a moderator, or an interruption such as a phone call). */
    val muted: Boolean = false,
    /** Our hand is up. */
    val handRaised: Boolean = false,
    /** Members whose hands are up (hex keys), oldest first: what a host lets speak. */
    val hands: List<String> = emptyList(),
    /** The last [CHAT_KEPT] chat lines, oldest first. */
    val chat: List<ChatLine> = emptyList(),
    /** Members heard of in this session, ourselves not counted. */
    val members: Int = 0,
    /** Why the last action failed, for the user; null when nothing did. */
    val error: String? = null,
    /** The space has ended (the host closed it, or removed us). */
    val ended: Boolean = false,
) {
    /** Whether our role lets us speak. */
    val speaking: Boolean
        get() = role == Role.HOST || role == Role.COHOST || role == Role.SPEAKER

    /** Whether we moderate: promote, demote, remove. */
    val moderating: Boolean
        get() = role == Role.HOST || role == Role.COHOST

    /** The state after one event of the core's session. */
    fun after(event: SessionEvent): SpaceState = when (event) {
        is SessionEvent.State -> copy(role = event.info.role, starting = false)
        is SessionEvent.Opened -> this
        is SessionEvent.Closed -> copy(ended = true)
        is SessionEvent.MemberJoined -> if (event.peer == me) this else copy(members = members + 1)
        is SessionEvent.MemberLeft ->
            if (event.peer == me) this
            else copy(members = (members - 1).coerceAtLeast(0), hands = hands - event.peer)
        is SessionEvent.Removed ->
            if (event.peer == me) copy(ended = true) else copy(hands = hands - event.peer)
        is SessionEvent.RoleChanged ->
            if (event.peer == me) copy(role = event.role, handRaised = false)
            else copy(hands = hands - event.peer)
        is SessionEvent.HandRaised -> when {
            event.peer == me -> copy(handRaised = event.raised)
            event.raised && event.peer !in hands -> copy(hands = hands + event.peer)
            !event.raised -> copy(hands = hands - event.peer)
            else -> this
        }
        is SessionEvent.SpeechProposed -> this
        is SessionEvent.MuteRequested -> copy(muted = true)
        is SessionEvent.Chat -> copy(chat = (chat + ChatLine(event.from, event.text)).takeLast(CHAT_KEPT))
        is SessionEvent.Reaction -> this
    }

    companion object {
        /** Chat lines a space keeps on screen. */
        const val CHAT_KEPT = 100
    }
}
