import Foundation
import SpacesCore
#if canImport(Security)
import Security
#endif

/// Where the user's secret key is kept.
public protocol SecretVault {
    /// The stored secret, nil when none; throws when one is stored but cannot be read.
    func read() throws -> String?
    /// Stores the secret, replacing any.
    func write(_ secret: String) throws
}

/// Errors of the identity store.
public enum IdentityError: Error, Equatable {
    /// The vault refused (status code of the platform).
    case vault(Int32)
}

/// The user's own Nostr key, the same in every space and every session: made on first use (or
/// imported) and kept in the vault (the Keychain on iPhones).
public final class IdentityStore {
    private let vault: SecretVault

    public init(vault: SecretVault) { self.vault = vault }

    /// The stored identity, else a new one, stored. Throws when one is stored but cannot be
    /// read: replacing it silently would change who the user is.
    public func identity() throws -> Identity {
        if let nsec = try vault.read() {
            return try Identity.import(secret: nsec)
        }
        let made = Identity.generate()
        try vault.write(made.exportNsec())
        return made
    }

    /// Replaces the identity with the user's own key; a bad key changes nothing.
    @discardableResult
    public func importKey(_ secret: String) throws -> Identity {
        let identity = try Identity.import(secret: secret)
        try vault.write(identity.exportNsec())
        return identity
    }
}

#if canImport(Security)
/// The Keychain, readable after the first unlock (a space keeps playing on a locked phone),
/// never synced to other devices.
public struct KeychainVault: SecretVault {
    private let account: String
    private let service = "org.nostr.spaces.identity"

    public init(account: String = "default") { self.account = account }

    private var query: [String: Any] {
        [kSecClass as String: kSecClassGenericPassword,
         kSecAttrService as String: service,
         kSecAttrAccount as String: account]
    }

    public func read() throws -> String? {
        var item: CFTypeRef?
        var search = query
        search[kSecReturnData as String] = true
        let status = SecItemCopyMatching(search as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess, let data = item as? Data else { throw IdentityError.vault(status) }
        return String(data: data, encoding: .utf8)
    }

    public func write(_ secret: String) throws {
        SecItemDelete(query as CFDictionary)
        var item = query
        item[kSecValueData as String] = Data(secret.utf8)
        item[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        let status = SecItemAdd(item as CFDictionary, nil)
        guard status == errSecSuccess else { throw IdentityError.vault(status) }
    }
}
#endif
