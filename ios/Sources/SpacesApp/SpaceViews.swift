#if canImport(SwiftUI)
import SwiftUI
import SpacesCore

/// The app's screens over a `SpaceModel`: the space list (nearby and every live space on the
/// relays) and, once in a space, the space itself. Apple-only: not compiled on Linux.
@available(iOS 15.0, macOS 12.0, *)
public struct SpacesAppView: View {
    private let model: SpaceModel
    @State private var state = SpaceState()
    @State private var listings: [SpaceListing] = []
    @State private var stopObserving: (() -> Void)?

    public init(model: SpaceModel) { self.model = model }

    public var body: some View {
        NavigationView {
            Group {
                if state.address != nil {
                    SpaceView(model: model, state: state)
                } else {
                    List {
                        if let error = state.error { Text(error).foregroundColor(.red) }
                        Section("Live spaces") {
                            ForEach(listings, id: \.address) { listing in
                                Button {
                                    Task { try? await model.join(address: listing.address, name: listing.name) }
                                } label: {
                                    VStack(alignment: .leading) {
                                        Text(listing.name)
                                        Text(listing.playable ? "\(listing.listeners) listening"
                                             : "plays in another app").font(.caption)
                                    }
                                }
                                .disabled(!listing.playable)
                            }
                        }
                    }
                    .refreshable { await refresh() }
                    .toolbar {
                        Button("Host") { Task { try? await model.host(name: "My space") } }
                    }
                }
            }
            .navigationTitle(state.address == nil ? "Spaces" : state.name)
        }
        .task { await refresh() }
        .onAppear { stopObserving = model.observe { state = $0 } }
        .onDisappear { stopObserving?() }
    }

    private func refresh() async {
        listings = (try? await browseSpaces(relays: model.relays, cell: nil, withinSecs: 6 * 3600,
                                            timeoutMs: 4000)) ?? []
    }
}

/// One space: role, mute, hand, chat, raised hands for moderators, leave.
@available(iOS 15.0, macOS 12.0, *)
struct SpaceView: View {
    let model: SpaceModel
    let state: SpaceState
    @State private var line = ""

    var body: some View {
        List {
            Section {
                Text("\(state.role.map { "\($0)" } ?? "joining") · \(state.members) others")
                Button(state.muted ? "Unmute" : "Mute") { try? model.setMuted(!state.muted) }
                Button(state.handRaised ? "Lower hand" : "Raise hand") {
                    try? model.running()?.raiseHand(raised: !state.handRaised)
                }
                Button("Leave", role: .destructive) { Task { await model.leave() } }
            }
            if state.moderating && !state.hands.isEmpty {
                Section("Hands") {
                    ForEach(state.hands, id: \.self) { peer in
                        Button("Let \(peer.prefix(8)) speak") { try? model.running()?.promoteSpeaker(peer: peer) }
                    }
                }
            }
            Section("Chat") {
                ForEach(Array(state.chat.enumerated()), id: \.offset) { _, chat in
                    Text("\(chat.from.prefix(8)): \(chat.text)")
                }
                HStack {
                    TextField("Say something", text: $line)
                    Button("Send") {
                        try? model.running()?.sendChat(text: line)
                        line = ""
                    }
                }
            }
        }
    }
}
#endif
