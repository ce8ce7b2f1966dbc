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

    /** A headset or Bluetooth device when one is connected, else the platform's choice. */
    private fun route() {
        if (!active) return
        if (Build.VERSION.SDK_INT >= 31) {
            val preferred = manager.availableCommunicationDevices
                .filter { it.type in HEADSETS }
                .minByOrNull { HEADSETS.indexOf(it.type) }
            if (preferred == null) {
                manager.clearCommunicationDevice()
            } else if (manager.communicationDevice?.id != preferred.id) {
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
