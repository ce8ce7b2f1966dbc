package org.nostr.spaces.app

import android.Manifest
import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.app.Service
import android.content.Context
import android.content.Intent
import android.content.pm.PackageManager
import android.content.pm.ServiceInfo
import android.graphics.drawable.Icon
import android.location.LocationManager
import android.media.AudioManager
import android.net.ConnectivityManager
import android.os.BatteryManager
import android.os.Binder
import android.os.Build
import android.os.Handler
import android.os.IBinder
import android.os.Looper
import android.os.PowerManager
import android.util.Log
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch
import org.nostr.spaces.core.AudioInput
import org.nostr.spaces.core.AudioOutput
import org.nostr.spaces.core.CellPlacement
import org.nostr.spaces.core.IceServerInfo
import org.nostr.spaces.core.SessionEvent
import org.nostr.spaces.core.SessionListener
import org.nostr.spaces.core.SessionSettings
import org.nostr.spaces.core.SpaceSession
import org.nostr.spaces.core.SpacesException
import org.nostr.spaces.core.Subscription
import org.nostr.spaces.core.UserSigner

/**
 * The space the phone is in. A foreground service (microphone and media playback, location
 * when following the user's cell) with an ongoing notification offering Leave and Mute, so
 * that a space keeps playing, and keeps relaying to this phone's children, with the screen
 * off or the app in the background. The activity only binds to show [state] and send
 * commands; it can come and go (rotation, screen off) without touching the session.
 */
class SpaceService : Service() {

    /** What a bound activity holds. */
    inner class Local : Binder() {
        /** The service. */
        val service: SpaceService
            get() = this@SpaceService
    }

    private val binder = Local()
    private val main = Handler(Looper.getMainLooper())
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val observers = mutableListOf<(SpaceState) -> Unit>()
    private lateinit var audio: CallAudio
    private lateinit var network: NetworkWatch
    private var session: SpaceSession? = null
    private var subscription: Subscription? = null
    private var roaming: SpaceRoaming? = null
    private var watcher: CellWatcher? = null
    /** Muted by an interruption (a call, headphones out), not by the user: resumes by itself. */
    private var interrupted = false

    /** What the screen shows. Read and changed on the main thread only. */
    var state = SpaceState()
        private set

    override fun onCreate() {
        super.onCreate()
        CoreLog.install()
        audio = CallAudio(this, requireNotNull(getSystemService(AudioManager::class.java)), main, ::interruption)
        val battery = getSystemService(BatteryManager::class.java)
        val power = getSystemService(PowerManager::class.java)
        network = NetworkWatch(
            requireNotNull(getSystemService(ConnectivityManager::class.java)),
            { NetworkWatch.lowBattery(battery, power) },
            main,
            { info -> command("network change") { it.networkChanged(info) } },
        )
        val channel = NotificationChannel(CHANNEL, "Live space", NotificationManager.IMPORTANCE_LOW)
        requireNotNull(getSystemService(NotificationManager::class.java)).createNotificationChannel(channel)
    }

    override fun onBind(intent: Intent): IBinder = binder

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int {
        val config = AppConfig.of(this)
        val relays = config.relays
        val ice = config.iceServers
        when (intent?.action) {
            ACTION_JOIN -> intent.getStringExtra(EXTRA_ADDRESS)?.let { address ->
                enter(intent.getStringExtra(EXTRA_NAME) ?: "", hosting = false) { settings ->
                    // The user's key in a signer app when they chose one, else the app's own.
                    when (val signer = Nip55Signer.of(this)) {
                        null -> SpaceSession.join(settings(relays, ice), address)
                        else -> SpaceSession.joinSignedBy(settings(relays, ice), address, UserSigner.external(signer))
                    }
                }
            }
            ACTION_HOST -> {
                val name = intent.getStringExtra(EXTRA_NAME) ?: "Space"
                enter(name, hosting = true) { settings ->
                    when (val signer = Nip55Signer.of(this)) {
                        null -> SpaceSession.host(settings(relays, ice), name, emptyList())
                        else -> SpaceSession.hostSignedBy(settings(relays, ice), name, emptyList(), UserSigner.external(signer))
                    }
                }
            }
            ACTION_NEARBY -> followCell(relays, ice, intent.getBooleanExtra(EXTRA_HOST_IF_EMPTY, false))
            ACTION_MUTE -> setMuted(!state.muted)
            ACTION_LEAVE -> leave()
            else -> Log.w(TAG, "unknown action ${intent?.action}")
        }
        // Not restarted after the system kills it: a space left is not rejoined unasked.
        return START_NOT_STICKY
    }

    override fun onDestroy() {
        watcher?.stop()
        network.stop()
        audio.stop()
        subscription?.close()
        roaming?.close()
        val ending = session
        session = null
        // The service is going: leave politely in the background (the core's runtime outlives us).
        scope.launch { ending?.leave() }
        main.removeCallbacksAndMessages(null)
        super.onDestroy()
    }

    /** Calls `observer` with the state now, then after every change, on the main thread. */
    fun observe(observer: (SpaceState) -> Unit): () -> Unit {
        observers += observer
        observer(state)
        return { observers -= observer }
    }

    /** The running session, for commands the screen sends (chat, hand, promotions). */
    fun session(): SpaceSession? = session ?: roaming?.session()

    /** Where the audio can go now (empty where the platform routes by itself). */
    fun routes(): List<CallAudio.Route> = audio.routes()

    /** Sends the audio to the route of `type` (null: automatic, a headset when there is one). */
    fun chooseRoute(type: Int?): Boolean = audio.choose(type)

    /** Mutes or unmutes our voice. */
    fun setMuted(muted: Boolean) {
        interrupted = false
        command("mute") { it.setMuted(muted) }
        update { it.copy(muted = muted) }
    }

    /** Leaves the space and ends the service. */
    fun leave() {
        val ending = session
        val roamingEnding = roaming
        session = null
        roaming = null
        watcher?.stop()
        watcher = null
        subscription?.close()
        subscription = null
        audio.stop()
        network.stop()
        update { SpaceState() }
        scope.launch {
            try {
                ending?.leave()
                roamingEnding?.leave()
            } catch (e: SpacesException) {
                Log.w(TAG, "left with an error: ${e.message}")
            } finally {
                roamingEnding?.close()
                main.post {
                    stopForeground(STOP_FOREGROUND_REMOVE)
                    stopSelf()
                }
            }
        }
    }

    private fun settings(relays: List<String>, ice: List<IceServerInfo>): SessionSettings {
        // Not needed (and not made) when a signer app holds the user's key.
        val secret = if (Nip55Signer.of(this) == null) {
            IdentityStore(getSharedPreferences(PREFS, Context.MODE_PRIVATE), protector).identity().exportNsec()
        } else {
            null
        }
        val mic = checkSelfPermission(Manifest.permission.RECORD_AUDIO) == PackageManager.PERMISSION_GRANTED
        return SessionSettings(
            relays = relays,
            name = Build.MODEL ?: "phone",
            secretKey = secret,
            network = network.current(),
            // The core opens the microphone only while we speak (a listener once promoted);
            // without the permission we can only listen.
            input = if (mic) AudioInput.Microphone else AudioInput.None,
            output = AudioOutput.SPEAKER,
            iceServers = ice,
        )
    }

    private fun enter(
        name: String,
        hosting: Boolean,
        start: suspend ((List<String>, List<IceServerInfo>) -> SessionSettings) -> SpaceSession,
    ) {
        if (state.address != null || state.starting) {
            update { it.copy(error = "already in a space: leave it first") }
            return
        }
        update { SpaceState(name = name, hosting = hosting, starting = true) }
        goForeground(name, microphone = hosting)
        audio.start()
        network.start()
        scope.launch {
            try {
                val started = start(::settings)
                main.post { attach(started, name, hosting) }
            } catch (e: Exception) {
                Log.w(TAG, "could not enter the space: ${e.message}")
                main.post {
                    update { SpaceState(error = e.message ?: e.toString()) }
                    audio.stop()
                    network.stop()
                    stopForeground(STOP_FOREGROUND_REMOVE)
                    stopSelf()
                }
            }
        }
    }

    private fun followCell(relays: List<String>, ice: List<IceServerInfo>, hostIfEmpty: Boolean) {
        if (roaming != null) return
        val locations = getSystemService(LocationManager::class.java)
        if (locations == null || checkSelfPermission(Manifest.permission.ACCESS_FINE_LOCATION) != PackageManager.PERMISSION_GRANTED) {
            update { it.copy(error = "nearby spaces need precise location") }
            return
        }
        update { SpaceState(name = "Nearby", starting = true) }
        goForeground("Nearby", microphone = hostIfEmpty, location = true)
        audio.start()
        network.start()
        val roaming = try {
            SpaceRoaming(settings(relays, ice), hostIfEmpty, { placement, started ->
                main.post { placed(placement, started) }
            })
        } catch (e: Exception) {
            update { SpaceState(error = e.message ?: e.toString()) }
            return
        }
        this.roaming = roaming
        roaming.start()
        watcher = CellWatcher(locations, { _, _ -> }, roaming::offer).also { it.start() }
    }

    private fun placed(placement: CellPlacement, started: SpaceSession?) {
        subscription?.close()
        subscription = null
        val cell = "${placement.cell.latLabel}, ${placement.cell.lonLabel}"
        if (started == null) {
            update { SpaceState(name = "No space in $cell") }
            return
        }
        attach(started, "Cell $cell", placement.hosting, owned = false)
    }

    /** Runs on the main thread with a session that has started. */
    private fun attach(started: SpaceSession, name: String, hosting: Boolean, owned: Boolean = true) {
        if (owned) session = started
        val me = try {
            started.publicKey()
        } catch (e: SpacesException) {
            null
        }
        update { SpaceState(address = started.address(), name = name, me = me, hosting = hosting, starting = true) }
        subscription = started.subscribe(object : SessionListener {
            override fun onEvent(event: SessionEvent) {
                main.post { update { it.after(event) } }
            }
        })
        goForeground(name, microphone = hosting, location = roaming != null)
    }

    private fun command(what: String, action: (SpaceSession) -> Unit) {
        val current = session() ?: return
        try {
            action(current)
        } catch (e: SpacesException) {
            Log.w(TAG, "$what failed: ${e.message}")
            update { it.copy(error = "$what failed: ${e.message}") }
        }
    }

    private fun interruption(stop: Boolean) {
        when {
            stop && !state.muted -> {
                command("mute") { it.setMuted(true) }
                interrupted = true
                update { it.copy(muted = true) }
            }
            !stop && interrupted -> {
                command("unmute") { it.setMuted(false) }
                interrupted = false
                update { it.copy(muted = false) }
            }
        }
    }

    private fun update(change: (SpaceState) -> SpaceState) {
        val before = state
        state = change(state)
        if (state.ended && !before.ended) {
            leave()
            return
        }
        if (state != before) {
            observers.toList().forEach { it(state) }
            if (state.address != null && (state.muted != before.muted || state.role != before.role)) {
                notifyState()
            }
        }
    }

    private fun goForeground(title: String, microphone: Boolean, location: Boolean = false) {
        val notification = notification(title)
        if (Build.VERSION.SDK_INT >= 29) {
            var types = ServiceInfo.FOREGROUND_SERVICE_TYPE_MEDIA_PLAYBACK
            if (microphone && Build.VERSION.SDK_INT >= 30) types = types or ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE
            if (location) types = types or ServiceInfo.FOREGROUND_SERVICE_TYPE_LOCATION
            startForeground(NOTIFICATION, notification, types)
        } else {
            startForeground(NOTIFICATION, notification)
        }
    }

    private fun notifyState() {
        requireNotNull(getSystemService(NotificationManager::class.java)).notify(NOTIFICATION, notification(state.name))
    }

    private fun notification(title: String): Notification {
        fun action(label: String, icon: Int, action: String) = Notification.Action.Builder(
            Icon.createWithResource(this, icon),
            label,
            PendingIntent.getService(
                this, action.hashCode(), Intent(this, SpaceService::class.java).setAction(action),
                PendingIntent.FLAG_IMMUTABLE or PendingIntent.FLAG_UPDATE_CURRENT,
            ),
        ).build()
        val open = packageManager.getLaunchIntentForPackage(packageName)?.let {
            PendingIntent.getActivity(this, 0, it, PendingIntent.FLAG_IMMUTABLE)
        }
        val text = when {
            state.starting -> "Joining…"
            state.muted -> "Muted"
            state.speaking -> "Speaking"
            else -> "Listening"
        }
        return Notification.Builder(this, CHANNEL)
            .setContentTitle(title)
            .setContentText(text)
            .setSmallIcon(android.R.drawable.ic_btn_speak_now)
            .setOngoing(true)
            .setCategory(Notification.CATEGORY_CALL)
            .setContentIntent(open)
            .addAction(action(if (state.muted) "Unmute" else "Mute", android.R.drawable.ic_lock_silent_mode, ACTION_MUTE))
            .addAction(action("Leave", android.R.drawable.ic_menu_close_clear_cancel, ACTION_LEAVE))
            .build()
    }

    companion object {
        private const val TAG = "SpaceService"
        private const val CHANNEL = "space"
        private const val NOTIFICATION = 1
        private const val PREFS = "identity"

        /** Join the space [EXTRA_ADDRESS]. */
        const val ACTION_JOIN = "org.nostr.spaces.JOIN"
        /** Open a space named [EXTRA_NAME]. */
        const val ACTION_HOST = "org.nostr.spaces.HOST"
        /** Follow the user's cell (auto-join); [EXTRA_HOST_IF_EMPTY] opens one in an empty cell. */
        const val ACTION_NEARBY = "org.nostr.spaces.NEARBY"
        /** Toggle our voice (the notification's button). */
        const val ACTION_MUTE = "org.nostr.spaces.MUTE"
        /** Leave and stop (the notification's button). */
        const val ACTION_LEAVE = "org.nostr.spaces.LEAVE"

        /** The space to join (`30312:…`). */
        const val EXTRA_ADDRESS = "address"
        /** The space's name, to show. */
        const val EXTRA_NAME = "name"
        /** With [ACTION_NEARBY]: open a space in a cell that has none. */
        const val EXTRA_HOST_IF_EMPTY = "hostIfEmpty"

        /** Seals the user's key in the app's preferences: the Android Keystore on phones. JVM
         *  tests, where no Keystore exists, put another here. */
        var protector: SecretProtector = KeystoreProtector()

        /** An intent for this service. */
        fun intent(context: Context, action: String) = Intent(context, SpaceService::class.java).setAction(action)
    }
}
