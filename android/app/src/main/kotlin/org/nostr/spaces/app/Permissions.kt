package org.nostr.spaces.app

import android.Manifest
import android.os.Build

/**
 * What the app may do with the permissions the user granted, partial and approximate grants
 * included: nothing is required to listen.
 */
data class PermissionPlan(
    /** The microphone is granted: we may host and speak. Otherwise we listen only. */
    val canSpeak: Boolean,
    /** Precise location is granted: the nearby space follows the user's cell. An UMAP cell is
     *  about 1 km wide, and an approximate fix (about 2 km) cannot tell cells apart, so
     *  approximate location alone only lists spaces. */
    val followsCell: Boolean,
    /** The space's ongoing notification (leave, mute) can be shown (API 33+ asks for it). */
    val notifies: Boolean,
) {
    companion object {
        /** Permissions the app asks for, on this API level. */
        fun wanted(sdk: Int = Build.VERSION.SDK_INT): Array<String> = buildList {
            add(Manifest.permission.RECORD_AUDIO)
            add(Manifest.permission.ACCESS_FINE_LOCATION)
            add(Manifest.permission.ACCESS_COARSE_LOCATION)
            if (sdk >= 33) add(Manifest.permission.POST_NOTIFICATIONS)
            if (sdk >= 31) add(Manifest.permission.BLUETOOTH_CONNECT)
        }.toTypedArray()

        /** The plan for what `granted` says of each permission. */
        fun of(granted: (String) -> Boolean, sdk: Int = Build.VERSION.SDK_INT) = PermissionPlan(
            canSpeak = granted(Manifest.permission.RECORD_AUDIO),
            followsCell = granted(Manifest.permission.ACCESS_FINE_LOCATION),
            notifies = sdk < 33 || granted(Manifest.permission.POST_NOTIFICATIONS),
        )
    }
}
