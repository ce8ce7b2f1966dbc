package org.nostr.spaces.app

import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.media.AudioAttributes
import android.media.AudioDeviceCallback
import android.media.AudioDeviceInfo
import android.media.AudioFocusRequest
import android.media.AudioManager
import android.os.Build
import android.os.Handler
import android.util.Log

/**
 * The phone's audio while in a space, as a call: audio focus for voice communication,
 * `MODE_IN_COMMUNICATION` (the platform's echo canceller and the voice-communication
 * microphone path), the route to a headset or Bluetooth device when one is there, and what
 * to do when another app takes the audio (a phone call) or the headphones come out.
 */
class CallAudio(
    private val context: Context,
    private val manager: AudioManager,
    private val handler: Handler,
    /** Our voice must stop (`true`: focus lost, headphones out) or may resume (`false`). */
    private val onInterruption: (Boolean) -> Unit,
) {
    /** Whether we hold the audio (between [start] and [stop]). */
    var active = false
        private set

    /** Whether the system granted us focus at [start]. */
    var focused = false
        private set

    /** The route the user picked ([choose]), by device type; null: a headset when there is one. */
    var chosen: Int? = null
        private set

    /** A place the space's audio can go, for the user to pick (API 31 and later). */
    data class Route(val type: Int, val name: String)

    /** The routes the platform offers for a call now; empty before API 31, where the platform
     *  routes by itself (a Bluetooth headset through SCO). */
    fun routes(): List<Route> = if (Build.VERSION.SDK_INT >= 31) {
        manager.availableCommunicationDevices.map { Route(it.type, label(it)) }.distinct()
    } else {
        emptyList()
    }

    /** Sends the audio to the route of `type` while it is there (null: back to automatic).
     *  False when the platform offers no such route. */
    fun choose(type: Int?): Boolean {
        if (type != null && routes().none { it.type == type }) return false
        chosen = type
        route()
        return true
    }

    private fun label(device: AudioDeviceInfo): String = when (device.type) {
        AudioDeviceInfo.TYPE_BUILTIN_EARPIECE -> "Phone"
        AudioDeviceInfo.TYPE_BUILTIN_SPEAKER -> "Speaker"
        AudioDeviceInfo.TYPE_WIRED_HEADSET, AudioDeviceInfo.TYPE_WIRED_HEADPHONES -> "Headset"
        AudioDeviceInfo.TYPE_USB_HEADSET -> "USB headset"
        else -> device.productName?.toString()?.takeIf { it.isNotBlank() } ?: "Bluetooth"
    }

    private val focusRequest = AudioFocusRequest.Builder(AudioManager.AUDIOFOCUS_GAIN)
        .setAudioAttributes(
            AudioAttributes.Builder()
                .setUsage(AudioAttributes.USAGE_VOICE_COMMUNICATION)
                .setContentType(AudioAttributes.CONTENT_TYPE_SPEECH)
                .build(),
        )
        .setOnAudioFocusChangeListener({ change -> onFocusChange(change) }, handler)
        .build()

    private val noisy = object : BroadcastReceiver() {
        override fun onReceive(context: Context, intent: Intent) {
            if (intent.action == AudioManager.ACTION_AUDIO_BECOMING_NOISY) {
                Log.i(TAG, "headphones out: muting our voice")
                onInterruption(true)
            }
        }
    }

    private val devices = object : AudioDeviceCallback() {
        override fun onAudioDevicesAdded(added: Array<out AudioDeviceInfo>) = route()
        override fun onAudioDevicesRemoved(removed: Array<out AudioDeviceInfo>) = route()
    }

    /** Takes the audio for a space. Idempotent. */
    fun start() {
        if (active) return
        focused = manager.requestAudioFocus(focusRequest) == AudioManager.AUDIOFOCUS_REQUEST_GRANTED
        if (!focused) Log.w(TAG, "audio focus refused (a call in progress?)")
        manager.mode = AudioManager.MODE_IN_COMMUNICATION
        val filter = IntentFilter(AudioManager.ACTION_AUDIO_BECOMING_NOISY)
        if (Build.VERSION.SDK_INT >= 33) {
            context.registerReceiver(noisy, filter, Context.RECEIVER_NOT_EXPORTED)
        } else {
            context.registerReceiver(noisy, filter)
        }
        manager.registerAudioDeviceCallback(devices, handler)
        active = true
        route()
    }

    /** Gives the audio back. Idempotent. */
    fun stop() {
        if (!active) return
        active = false
        manager.unregisterAudioDeviceCallback(devices)
        context.unregisterReceiver(noisy)
        if (Build.VERSION.SDK_INT >= 31) {
            manager.clearCommunicationDevice()
        } else {
            @Suppress("DEPRECATION")
            if (manager.isBluetoothScoOn) {
                manager.isBluetoothScoOn = false
                manager.stopBluetoothSco()
            }
        }
        manager.mode = AudioManager.MODE_NORMAL
        manager.abandonAudioFocusRequest(focusRequest)
        focused = false
    }

    private fun onFocusChange(change: Int) {
        when (change) {
            AudioManager.AUDIOFOCUS_LOSS, AudioManager.AUDIOFOCUS_LOSS_TRANSIENT -> {
                focused = false
                onInterruption(true)
            }
            AudioManager.AUDIOFOCUS_GAIN -> {
                focused = true
                onInterruption(false)
            }
        }
    }

    /** The user's pick while it is there, else a headset or Bluetooth device when one is
     *  connected, else the platform's choice. */
    private fun route() {
        if (!active) return
        if (Build.VERSION.SDK_INT >= 31) {
            val available = manager.availableCommunicationDevices
            val preferred = available.firstOrNull { it.type == chosen }
                ?: available.filter { it.type in HEADSETS }.minByOrNull { HEADSETS.indexOf(it.type) }
            val current = manager.communicationDevice
            if (preferred == null) {
                manager.clearCommunicationDevice()
            } else if (current == null || current.type != preferred.type || current.id != preferred.id) {
                manager.setCommunicationDevice(preferred)
            }
        } else {
            @Suppress("DEPRECATION")
            val bluetooth = manager.getDevices(AudioManager.GET_DEVICES_OUTPUTS)
                .any { it.type == AudioDeviceInfo.TYPE_BLUETOOTH_SCO }
            @Suppress("DEPRECATION")
            if (bluetooth && !manager.isBluetoothScoOn) {
                manager.startBluetoothSco()
                manager.isBluetoothScoOn = true
            }
        }
    }

    private companion object {
        const val TAG = "CallAudio"

        /** Preferred first: what the user plugged in or paired beats the phone's own. */
        val HEADSETS = listOf(
            AudioDeviceInfo.TYPE_WIRED_HEADSET,
            AudioDeviceInfo.TYPE_USB_HEADSET,
            AudioDeviceInfo.TYPE_BLE_HEADSET,
            AudioDeviceInfo.TYPE_BLUETOOTH_SCO,
            AudioDeviceInfo.TYPE_WIRED_HEADPHONES,
        )
    }
}
