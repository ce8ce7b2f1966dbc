package org.nostr.spaces.app

import android.Manifest
import android.app.Activity
import android.content.pm.PackageManager
import android.location.LocationManager
import android.net.ConnectivityManager
import android.os.Bundle
import android.widget.TextView
import org.nostr.spaces.core.SessionEvent

/** Shows the user's UMAP cell, its npub, and the cell's live space the phone is in. */
class MainActivity : Activity() {
    private lateinit var status: TextView
    private var cellLine = "Waiting for a location fix…"
    private var spaceLine = ""
    private var watcher: CellWatcher? = null
    private var roaming: SpaceRoaming? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        status = TextView(this).apply { text = cellLine }
        setContentView(status)
        val roaming = SpaceRoaming(
            getSystemService(ConnectivityManager::class.java),
            relays = listOf("wss://relay.copylaradio.com", "wss://relay.damus.io"),
            hostIfEmpty = true,
            onPlacement = { placement ->
                show(space = placement.address?.let { if (placement.hosting) "Hosting $it" else "In $it" }
                    ?: "No live space here")
            },
            onEvent = { event ->
                if (event is SessionEvent.RoleChanged) show(space = "$spaceLine\n${event.peer.take(8)} is now ${event.role}")
            },
        )
        this.roaming = roaming
        watcher = CellWatcher(getSystemService(LocationManager::class.java), { move, key ->
            show(cell = "Cell ${move.to.latLabel}, ${move.to.lonLabel}\n${key.npub}")
        }, roaming::offer)
    }

    private fun show(cell: String = cellLine, space: String = spaceLine) = runOnUiThread {
        cellLine = cell
        spaceLine = space
        status.text = "$cellLine\n\n$spaceLine"
    }

    override fun onStart() {
        super.onStart()
        val needed = arrayOf(Manifest.permission.ACCESS_FINE_LOCATION, Manifest.permission.RECORD_AUDIO)
        if (needed.all { checkSelfPermission(it) == PackageManager.PERMISSION_GRANTED }) {
            begin()
        } else {
            requestPermissions(needed, 1)
        }
    }

    override fun onRequestPermissionsResult(code: Int, permissions: Array<out String>, results: IntArray) {
        super.onRequestPermissionsResult(code, permissions, results)
        if (results.isNotEmpty() && results.all { it == PackageManager.PERMISSION_GRANTED }) begin()
    }

    private fun begin() {
        roaming?.start()
        watcher?.start()
    }

    override fun onStop() {
        watcher?.stop()
        roaming?.stop()
        super.onStop()
    }

    override fun onDestroy() {
        roaming?.close()
        super.onDestroy()
    }
}
