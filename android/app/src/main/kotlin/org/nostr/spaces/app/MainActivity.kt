package org.nostr.spaces.app

import android.app.Activity
import android.content.ComponentName
import android.content.Context
import android.content.Intent
import android.content.ServiceConnection
import android.content.pm.PackageManager
import android.os.Bundle
import android.os.IBinder
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch
import org.nostr.spaces.core.SpaceListing
import org.nostr.spaces.core.SpacesException
import org.nostr.spaces.core.browseSpaces

/**
 * Two screens in one activity, built in code (the shell has no resources): the space list
 * (nearby, and every live space on the relays) and, once in a space, the space itself (role,
 * mute, hand, chat, raised hands for moderators, leave). The session lives in [SpaceService]:
 * this activity binds to it and can be destroyed and recreated (rotation) at any time.
 */
class MainActivity : Activity() {
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Main)
    private lateinit var root: LinearLayout
    private lateinit var status: TextView
    private lateinit var list: LinearLayout
    private lateinit var space: LinearLayout
    private var service: SpaceService? = null
    private var unobserve: (() -> Unit)? = null
    private var plan = PermissionPlan(canSpeak = false, followsCell = false, notifies = false)

    /** The space list as last browsed (fetched again on every start, rotation included; the
     *  session itself lives in the service). */
    var listings: List<SpaceListing> = emptyList()
        private set

    private val connection = object : ServiceConnection {
        override fun onServiceConnected(name: ComponentName?, binder: IBinder?) {
            val bound = (binder as? SpaceService.Local)?.service ?: return
            service = bound
            unobserve = bound.observe(::show)
        }

        override fun onServiceDisconnected(name: ComponentName?) {
            unobserve?.invoke()
            unobserve = null
            service = null
            show(SpaceState())
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        status = TextView(this)
        list = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        space = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL }
        root = LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(status)
            addView(button("Nearby") { nearby() })
            addView(button("Host a space") { host() })
            addView(button("Refresh") { refresh() })
            addView(button("Sign with a signer app") { login() })
            addView(list)
            addView(space)
        }
        setContentView(ScrollView(this).apply { addView(root) })
        show(SpaceState())
    }

    override fun onStart() {
        super.onStart()
        val wanted = PermissionPlan.wanted()
        plan = PermissionPlan.of(::granted)
        if (wanted.any { !granted(it) }) requestPermissions(wanted, PERMISSIONS)
        // Binding does not start the service: only joining or hosting does.
        bindService(Intent(this, SpaceService::class.java), connection, Context.BIND_AUTO_CREATE)
        refresh()
    }

    @Deprecated("Activity results: the plain Activity API of the shell")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        @Suppress("DEPRECATION")
        super.onActivityResult(requestCode, resultCode, data)
        if (requestCode != SIGNER_LOGIN) return
        if (resultCode == RESULT_OK && Nip55Signer.remember(this, data)) {
            toast("Signing with ${data?.getStringExtra("package")}")
        } else {
            toast("The signer app did not answer: the app's own key stays")
        }
    }

    private fun login() {
        try {
            @Suppress("DEPRECATION")
            startActivityForResult(Nip55Signer.loginIntent(), SIGNER_LOGIN)
        } catch (e: android.content.ActivityNotFoundException) {
            toast("No signer app (NIP-55) is installed")
        }
    }

    override fun onRequestPermissionsResult(code: Int, permissions: Array<out String>, results: IntArray) {
        super.onRequestPermissionsResult(code, permissions, results)
        // Whatever was granted, in part or approximately, the plan says what still works.
        plan = PermissionPlan.of(::granted)
        show(service?.state ?: SpaceState())
    }

    override fun onStop() {
        // The space keeps playing: the service holds it, only the screen goes.
        unobserve?.invoke()
        unobserve = null
        if (service != null) unbindService(connection)
        service = null
        super.onStop()
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }

    private fun granted(permission: String) = checkSelfPermission(permission) == PackageManager.PERMISSION_GRANTED

    private fun start(action: String, extras: Intent.() -> Unit = {}) {
        startForegroundService(SpaceService.intent(this, action).apply(extras))
    }

    private fun join(address: String, name: String) = start(SpaceService.ACTION_JOIN) {
        putExtra(SpaceService.EXTRA_ADDRESS, address)
        putExtra(SpaceService.EXTRA_NAME, name)
    }

    private fun host() {
        if (!plan.canSpeak) return toast("Hosting needs the microphone")
        start(SpaceService.ACTION_HOST) { putExtra(SpaceService.EXTRA_NAME, "${android.os.Build.MODEL}'s space") }
    }

    private fun nearby() {
        if (!plan.followsCell) return toast("Nearby spaces need precise location")
        start(SpaceService.ACTION_NEARBY) { putExtra(SpaceService.EXTRA_HOST_IF_EMPTY, plan.canSpeak) }
    }

    private fun refresh() {
        scope.launch {
            listings = try {
                browseSpaces(AppConfig.of(this@MainActivity).relays, null, BROWSE_WITHIN_SECS, BROWSE_TIMEOUT_MS)
            } catch (e: SpacesException) {
                toast("Spaces not listed: ${e.message}")
                emptyList()
            }
            showList()
        }
    }

    private fun showList() {
        list.removeAllViews()
        for (listing in listings) {
            val line = "${listing.name} · ${listing.listeners} listening" +
                if (listing.playable) "" else " · plays in another app"
            list.addView(TextView(this).apply { text = line })
            if (listing.playable) list.addView(button("Join") { join(listing.address, listing.name) })
        }
    }

    /** Shows the service's state; called at once on binding, then on every change. */
    fun show(state: SpaceState) {
        val speakHint = if (plan.canSpeak) "" else "\nListening only: the microphone is not allowed."
        status.text = when {
            state.error != null -> "Error: ${state.error}"
            state.address == null && state.starting -> "Joining ${state.name}…"
            state.address == null -> "In no space.$speakHint"
            else -> "${state.name}\n${state.role ?: "joining"} · ${state.members} others$speakHint"
        }
        list.visibility = if (state.address == null) View.VISIBLE else View.GONE
        space.removeAllViews()
        if (state.address == null) return
        val session = { service?.session() }
        space.addView(button(if (state.muted) "Unmute" else "Mute") { service?.setMuted(!state.muted) })
        space.addView(button(if (state.handRaised) "Lower hand" else "Raise hand") {
            act { session()?.raiseHand(!state.handRaised) }
        })
        space.addView(button("Leave") { service?.leave() })
        for (route in service?.routes().orEmpty()) {
            space.addView(button("Audio: ${route.name}") { service?.chooseRoute(route.type) })
        }
        if (state.moderating) {
            for (peer in state.hands) {
                space.addView(button("Let ${peer.take(8)} speak") { act { session()?.promoteSpeaker(peer) } })
            }
        }
        for (line in state.chat.takeLast(CHAT_SHOWN)) {
            space.addView(TextView(this).apply { text = "${line.from.take(8)}: ${line.text}" })
        }
        val input = EditText(this).apply { hint = "Say something" }
        space.addView(input)
        space.addView(button("Send") {
            act { session()?.sendChat(input.text.toString()) }
            input.text.clear()
        })
    }

    private fun act(action: () -> Unit) {
        try {
            action()
        } catch (e: SpacesException) {
            toast(e.message ?: e.toString())
        }
    }

    private fun toast(text: String) = android.widget.Toast.makeText(this, text, android.widget.Toast.LENGTH_SHORT).show()

    private fun button(label: String, onClick: () -> Unit) = Button(this).apply {
        text = label
        setOnClickListener { onClick() }
    }

    private companion object {
        const val PERMISSIONS = 1
        const val SIGNER_LOGIN = 2
        const val CHAT_SHOWN = 20
        const val BROWSE_WITHIN_SECS = 21_600uL
        const val BROWSE_TIMEOUT_MS = 4_000uL
    }
}
