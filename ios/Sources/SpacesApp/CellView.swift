import SwiftUI
import SpacesCore

/// Shows the user's current UMAP cell, the npub of its space, and the cell's live space the
/// phone is in.
@available(iOS 15.0, macOS 12.0, *)
public struct CellView: View {
    @State private var cell = "Waiting for a location fix…"
    @State private var npub = ""
    @State private var space = ""
    @State private var watcher: CellWatcher?
    @State private var roaming: SpaceRoaming?

    public init() {}

    public var body: some View {
        VStack(spacing: 12) {
            Text(cell).font(.title2)
            Text(npub).font(.caption).textSelection(.enabled)
            Text(space).font(.body)
        }
        .padding()
        .onAppear {
            roaming = try? SpaceRoaming(
                relays: ["wss://relay.copylaradio.com", "wss://relay.damus.io"],
                hostIfEmpty: true,
                onPlacement: { placement in
                    DispatchQueue.main.async {
                        if let address = placement.address {
                            space = placement.hosting ? "Hosting \(address)" : "In \(address)"
                        } else {
                            space = "No live space here"
                        }
                    }
                },
                onEvent: { _ in }
            )
            let roaming = roaming
            watcher = try? CellWatcher(onCell: { move, key in
                DispatchQueue.main.async {
                    cell = "Cell \(move.to.latLabel), \(move.to.lonLabel)"
                    npub = key.npub
                }
            }, onFix: { fix in roaming?.offer(fix) })
            roaming?.start()
            watcher?.start()
        }
        .onDisappear {
            watcher?.stop()
            roaming?.stop()
        }
    }
}
