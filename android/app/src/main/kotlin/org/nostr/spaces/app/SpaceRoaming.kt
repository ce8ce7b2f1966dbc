package org.nostr.spaces.app

import android.util.Log
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.launch
import org.nostr.spaces.core.CellPlacement
import org.nostr.spaces.core.CellRoamer
import org.nostr.spaces.core.GpsFix
import org.nostr.spaces.core.SessionSettings
import org.nostr.spaces.core.SpaceSession
import org.nostr.spaces.core.SpacesException
import org.nostr.spaces.core.defaultTrackerSettings

/**
 * Auto-join by cell: every fix goes to the core's [CellRoamer], which decides when the user has
 * really moved, leaves the old cell's space and joins (or opens) the new one. This class only
 * feeds it fixes one at a time and reports where the user landed, with the new session.
 */
class SpaceRoaming(
    settings: SessionSettings,
    hostIfEmpty: Boolean,
    private val onPlacement: (CellPlacement, SpaceSession?) -> Unit,
    private val onError: (SpacesException) -> Unit = {},
) {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    // Fixes are handled one at a time, in order; a backlog keeps only the newest.
    private val fixes = Channel<GpsFix>(Channel.CONFLATED)
    private val roamer = CellRoamer(settings, hostIfEmpty, defaultTrackerSettings())
    private var consumer: Job? = null

    /** Starts following fixes (idempotent). */
    fun start() {
        if (consumer?.isActive == true) return
        consumer = scope.launch {
            for (fix in fixes) {
                try {
                    val placement = roamer.fix(fix) ?: continue
                    onPlacement(placement, roamer.session())
                } catch (e: SpacesException) {
                    Log.w(TAG, "fix not followed: ${e.message}")
                    onError(e)
                }
            }
        }
    }

    /** Called by [CellWatcher] for every platform fix. */
    fun offer(fix: GpsFix) {
        fixes.trySend(fix)
    }

    /** The session of the cell the user is in, if any. */
    fun session(): SpaceSession? = roamer.session()

    /** Leaves the cell's space and stops following fixes. */
    suspend fun leave() {
        consumer?.cancel()
        consumer = null
        roamer.leave()
    }

    /** Ends for good. */
    fun close() {
        scope.cancel()
        roamer.close()
    }

    private companion object {
        const val TAG = "SpaceRoaming"
    }
}
