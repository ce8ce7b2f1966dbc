package org.nostr.spaces.app

import android.Manifest
import android.app.Activity
import android.content.pm.PackageManager
import android.location.LocationManager
import android.os.Bundle
import android.widget.TextView

/** Shows the user's current UMAP cell and the npub of its space. */
class MainActivity : Activity() {
    private lateinit var status: TextView
    private var watcher: CellWatcher? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        status = TextView(this).apply { text = "Waiting for a location fix…" }
        setContentView(status)
        watcher = CellWatcher(getSystemService(LocationManager::class.java)) { move, key ->
            runOnUiThread {
                status.text = "Cell ${move.to.latLabel}, ${move.to.lonLabel}\n${key.npub}"
            }
        }
    }

    override fun onStart() {
        super.onStart()
        if (checkSelfPermission(Manifest.permission.ACCESS_FINE_LOCATION) == PackageManager.PERMISSION_GRANTED) {
            watcher?.start()
        } else {
            requestPermissions(arrayOf(Manifest.permission.ACCESS_FINE_LOCATION), 1)
        }
    }

    override fun onRequestPermissionsResult(code: Int, permissions: Array<out String>, results: IntArray) {
        super.onRequestPermissionsResult(code, permissions, results)
        if (results.firstOrNull() == PackageManager.PERMISSION_GRANTED) watcher?.start()
    }

    override fun onStop() {
        watcher?.stop()
        super.onStop()
    }
}
