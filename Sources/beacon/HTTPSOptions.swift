import ArgumentParser
import BeaconServer
import BeaconTLS
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `serve --https`, `--tls-cert FILE --tls-key FILE`: HTTPS (and HTTP/2) with the local CA's
/// certificate or the user's own.
struct HTTPSOptions: ParsableArguments {
    @Flag(help: "Serve HTTPS and HTTP/2 with a certificate from Beacon's local CA (made on first use; see 'beacon trust').")
    var https = false

    @Option(help: "Serve HTTPS with this PEM certificate (chain) instead, e.g. mkcert's; needs --tls-key.")
    var tlsCert: String?

    @Option(help: "The PEM private key of --tls-cert.")
    var tlsKey: String?

    var enabled: Bool { https || tlsCert != nil }

    func validate() throws {
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
    }

    /// The certificate to serve: the user's pair, checked, or the local CA's for `names` (made,
    /// or issued anew, when needed). Nil without HTTPS.
    func identity(names: ServerNames, logger: Logger) throws(BeaconError) -> ServerIdentity? {
        guard enabled else { return nil }
        let now = Date()
        let folder = LocalAuthority.defaultFolder(environment: ProcessInfo.processInfo.environment)
        guard tlsCert != nil || folder != nil else {
            throw BeaconError(
                .tls,
                "neither XDG_DATA_HOME nor HOME is set: nowhere to keep the local CA; set one, or pass --tls-cert and --tls-key"
            )
        }
        do throws(TLSError) {
            if let tlsCert, let tlsKey {
                let identity = try ServerIdentity.load(certificateFile: tlsCert, keyFile: tlsKey, now: now)
                if identity.names.dnsNames.isEmpty && identity.names.ipAddresses.isEmpty {
                    logger.warning("\(tlsCert) names no host (no subject alternative names): browsers will refuse it")
                }
                return identity
            }
            let home = folder ?? ""
            let (authority, created) = try LocalAuthority.open(in: home, now: now)
            if created {
                logger.notice(
                    "made a local certificate authority in \(home); run 'beacon trust --install' once so browsers trust it"
                )
            }
            let (identity, issued) = try authority.serverIdentity(for: names, now: now)
            if issued { logger.info("issued a certificate for \(names.shown.joined(separator: ", "))") }
            return identity
        } catch {
            throw BeaconError(.tls, error.description)
        }
    }
}
