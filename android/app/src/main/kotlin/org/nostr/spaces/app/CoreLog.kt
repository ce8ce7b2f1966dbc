package org.nostr.spaces.app

import android.util.Log
import org.nostr.spaces.core.LogLevel
import org.nostr.spaces.core.LogSink
import org.nostr.spaces.core.SpacesException
import org.nostr.spaces.core.initLogging

/** The core's logs in logcat, under the tag [TAG] (`adb logcat -s spaces`). */
object CoreLog : LogSink {
    /** The logcat tag of every core line. */
    const val TAG = "spaces"

    /** Core modules at info, the tree and link decisions at debug in debug builds. */
    const val FILTER = "info,spaces_core::participant=info,webrtc=warn"

    @Volatile private var installed = false

    /** Routes core logs to logcat; once per process (later calls do nothing). */
    @Synchronized
    fun install(filter: String = FILTER) {
        if (installed) return
        try {
            initLogging(filter, this)
        } catch (e: SpacesException) {
            Log.w(TAG, "core logs not routed: ${e.message}")
        }
        installed = true
    }

    override fun log(level: LogLevel, target: String, message: String) {
        val priority = when (level) {
            LogLevel.ERROR -> Log.ERROR
            LogLevel.WARN -> Log.WARN
            LogLevel.INFO -> Log.INFO
            LogLevel.DEBUG -> Log.DEBUG
            LogLevel.TRACE -> Log.VERBOSE
        }
        Log.println(priority, TAG, "$target: $message")
    }
}
