import SwiftUI
import SpacesCore

/// Shows the user's current UMAP cell and the npub of its space.
@available(iOS 15.0, macOS 12.0, *)
public struct CellView: View {
    @State private var cell = "Waiting for a location fix…"
    @State private var npub = ""
    @State private var watcher: CellWatcher?

    public init() {}

    public var body: some View {
        VStack(spacing: 12) {
            Text(cell).font(.title2)
            Text(npub).font(.caption).textSelection(.enabled)
        }
        .padding()
        .onAppear {
            watcher = try? CellWatcher { move, key in
                DispatchQueue.main.async {
                    cell = "Cell \(move.to.latLabel), \(move.to.lonLabel)"
                    npub = key.npub
                }
            }
            watcher?.start()
        }
        .onDisappear { watcher?.stop() }
    }
}
