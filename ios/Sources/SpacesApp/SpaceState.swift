import SpacesCore

/// One line of the space's chat, as the screen shows it.
public struct ChatLine: Equatable {
    public let from: String
    public let text: String
}

/// What the space screen shows, rebuilt from the core's events by `after(_:)`. Platform-free:
/// the same rules as the Android app's, tested on Linux.
public struct SpaceState: Equatable {
    /// Chat lines kept on screen.
    public static let chatKept = 100

    /// The space's address (`30312:…`), nil when in no space.
    public var address: String?
    /// Its name.
    public var name = ""
    /// Our key (hex), once the session runs.
    public var me: String?
    /// We opened the space.
    public var hosting = false
    /// Our role; nil until the session runs.
    public var role: Role?
    /// Our voice is muted (by us, a moderator, or an interruption such as a call).
    public var muted = false
    /// Our hand is up.
    public var handRaised = false
    /// Members whose hands are up, oldest first.
    public var hands: [String] = []
    /// The last `chatKept` chat lines, oldest first.
    public var chat: [ChatLine] = []
    /// Members heard of, ourselves not counted.
    public var members = 0
    /// Why the last action failed, for the user.
    public var error: String?
    /// The space has ended (closed, or we were removed).
    public var ended = false

    public init(address: String? = nil, name: String = "", me: String? = nil, hosting: Bool = false,
                role: Role? = nil) {
        self.address = address
        self.name = name
        self.me = me
        self.hosting = hosting
        self.role = role
    }

    /// Whether our role lets us speak.
    public var speaking: Bool { role == .host || role == .cohost || role == .speaker }
    /// Whether we moderate.
    public var moderating: Bool { role == .host || role == .cohost }

    /// The state after one event of the core's session.
    public func after(_ event: SessionEvent) -> SpaceState {
        var next = self
        switch event {
        case .state(let info):
            next.role = info.role
        case .opened, .speechProposed, .reaction:
            break
        case .closed:
            next.ended = true
        case .memberJoined(let peer):
            if peer != me { next.members += 1 }
        case .memberLeft(let peer):
            if peer != me {
                next.members = max(0, members - 1)
                next.hands.removeAll { $0 == peer }
            }
        case .removed(let peer):
            if peer == me { next.ended = true } else { next.hands.removeAll { $0 == peer } }
        case .roleChanged(let peer, let role):
            if peer == me {
                next.role = role
                next.handRaised = false
            } else {
                next.hands.removeAll { $0 == peer }
            }
        case .handRaised(let peer, let raised):
            if peer == me {
                next.handRaised = raised
            } else if raised {
                if !hands.contains(peer) { next.hands.append(peer) }
            } else {
                next.hands.removeAll { $0 == peer }
            }
        case .muteRequested:
            next.muted = true
        case .chat(let from, let text):
            next.chat.append(ChatLine(from: from, text: text))
            if next.chat.count > SpaceState.chatKept { next.chat.removeFirst(next.chat.count - SpaceState.chatKept) }
        }
        return next
    }
}
