package org.nostr.spaces.app

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test
import org.nostr.spaces.core.SessionEvent
import org.nostr.spaces.core.Role

/** The space screen's state from the core's events: platform-free. */
class SpaceStateTest {
    private val me = "aa".repeat(32)
    private val bob = "bb".repeat(32)
    private val carol = "cc".repeat(32)

    @Test
    fun handsRolesAndChatFollowTheEvents() {
        var state = SpaceState(address = "30312:x:y", me = me, role = Role.HOST)
        state = state.after(SessionEvent.MemberJoined(bob)).after(SessionEvent.MemberJoined(carol))
        assertEquals(2, state.members)
        state = state.after(SessionEvent.HandRaised(bob, true)).after(SessionEvent.HandRaised(carol, true))
            .after(SessionEvent.HandRaised(bob, true))
        assertEquals("oldest first, once each", listOf(bob, carol), state.hands)
        state = state.after(SessionEvent.RoleChanged(bob, Role.SPEAKER))
        assertEquals("a promoted member's hand goes down", listOf(carol), state.hands)
        state = state.after(SessionEvent.MemberLeft(carol))
        assertEquals(emptyList<String>(), state.hands)
        assertEquals(1, state.members)
        repeat(SpaceState.CHAT_KEPT + 5) { state = state.after(SessionEvent.Chat(bob, "line $it")) }
        assertEquals(SpaceState.CHAT_KEPT, state.chat.size)
        assertEquals("line ${SpaceState.CHAT_KEPT + 4}", state.chat.last().text)
        assertTrue(state.moderating)
    }

    @Test
    fun aModeratorsRequestsAndTheEndReachUs() {
        var state = SpaceState(address = "30312:x:y", me = me, role = Role.LISTENER)
        state = state.after(SessionEvent.HandRaised(me, true))
        assertTrue(state.handRaised)
        state = state.after(SessionEvent.RoleChanged(me, Role.SPEAKER))
        assertTrue(state.speaking && !state.handRaised)
        state = state.after(SessionEvent.MuteRequested(bob))
        assertTrue(state.muted)
        assertTrue(state.after(SessionEvent.Removed(me)).ended)
        assertTrue(!state.after(SessionEvent.Removed(bob)).ended)
        assertTrue(state.after(SessionEvent.Closed).ended)
    }
}
