import Foundation
#if os(iOS)
import AVFoundation
#endif

/// What happened to the phone's audio while in a space.
public enum AudioChange: Equatable {
    /// Another app took the audio (a phone call, an alarm).
    case interruptionBegan
    /// It gave it back; `shouldResume` is the system's advice.
    case interruptionEnded(shouldResume: Bool)
    /// The route lost its device (headphones unplugged, Bluetooth gone).
    case deviceLost
}

/// What our voice does when the audio changes under it: muted while another app has the audio
/// or the headphones came out; unmuted again only when the interruption, not the user, muted it.
/// Platform-free, tested on Linux.
public struct InterruptionPolicy {
    private var mutedByInterruption = false

    public init() {}

    /// The mute state to apply after `change` when `muted` is the current one; nil: no change.
    public mutating func apply(_ change: AudioChange, muted: Bool) -> Bool? {
        switch change {
        case .interruptionBegan, .deviceLost:
            guard !muted else { return nil }
            mutedByInterruption = true
            return true
        case .interruptionEnded(let shouldResume):
            guard mutedByInterruption, shouldResume else { return nil }
            mutedByInterruption = false
            return false
        }
    }

    /// The user muted or unmuted: an interruption's mute is theirs now.
    public mutating func userChose() { mutedByInterruption = false }
}

#if os(iOS)
/// The audio session of a space, as a call: `.playAndRecord` in `.voiceChat` mode (the
/// system's echo canceller), Bluetooth headsets allowed, the speaker by default, and background
/// audio (`UIBackgroundModes` `audio` in Info.plist) so that the space keeps playing with the
/// screen locked. Interruptions and lost routes go to `onChange`.
public final class CallAudio {
    private let onChange: (AudioChange) -> Void
    private var observers: [NSObjectProtocol] = []

    public init(onChange: @escaping (AudioChange) -> Void) { self.onChange = onChange }

    /// Takes the audio for a space.
    public func start() throws {
        let session = AVAudioSession.sharedInstance()
        try session.setCategory(.playAndRecord, mode: .voiceChat,
                                options: [.allowBluetooth, .defaultToSpeaker])
        try session.setActive(true)
        let center = NotificationCenter.default
        observers.append(center.addObserver(forName: AVAudioSession.interruptionNotification,
                                            object: session, queue: .main) { [onChange] note in
            guard let raw = note.userInfo?[AVAudioSessionInterruptionTypeKey] as? UInt,
                  let type = AVAudioSession.InterruptionType(rawValue: raw) else { return }
            switch type {
            case .began: onChange(.interruptionBegan)
            case .ended:
                let options = (note.userInfo?[AVAudioSessionInterruptionOptionKey] as? UInt)
                    .map(AVAudioSession.InterruptionOptions.init(rawValue:)) ?? []
                onChange(.interruptionEnded(shouldResume: options.contains(.shouldResume)))
            @unknown default: break
            }
        })
        observers.append(center.addObserver(forName: AVAudioSession.routeChangeNotification,
                                            object: session, queue: .main) { [onChange] note in
            guard let raw = note.userInfo?[AVAudioSessionRouteChangeReasonKey] as? UInt,
                  AVAudioSession.RouteChangeReason(rawValue: raw) == .oldDeviceUnavailable else { return }
            onChange(.deviceLost)
        })
    }

    /// Gives the audio back to other apps.
    public func stop() {
        observers.forEach(NotificationCenter.default.removeObserver)
        observers.removeAll()
        try? AVAudioSession.sharedInstance().setActive(false, options: .notifyOthersOnDeactivation)
    }
}
#endif
