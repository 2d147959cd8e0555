import BeaconTLS
import Testing
import X509

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The local CA as the start of `serve --https` uses it, with the clock injected: made once and
/// reused, server certificates reissued for new names, near their end, or under a new CA.
@Suite struct LocalAuthorityTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let names = ServerNames(host: "127.0.0.1", allowHosts: [])

    func folder() throws -> String {
        var template = Array("/tmp/beacon-ca-XXXXXX".utf8CString)
        let made = try #require(mkdtemp(&template))
        return String(cString: made) + "/data/beacon"
    }

    func read(_ path: String) throws -> String {
        String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
    }

    @Test func theCAIsMadeOnceWithPrivateKeyFilesAndReused() throws {
        let folder = try folder()
        let (first, created) = try LocalAuthority.open(in: folder, now: now)
        #expect(created)
        let (again, createdAgain) = try LocalAuthority.open(in: folder, now: now.addingTimeInterval(86400))
        #expect(!createdAgain)
        #expect(again.certificate == first.certificate)
        var info = stat()
        #expect(stat(folder, &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(stat(folder + "/ca-key.pem", &info) == 0 && info.st_mode & 0o777 == 0o600)
        let constraints = try #require(try first.certificate.extensions.basicConstraints)
        #expect(constraints == .isCertificateAuthority(maxPathLength: 0))
    }

    @Test func theServerCertificateCoversItsNamesAndIsReusedUntilItNeedsRenewal() throws {
        let folder = try folder()
        let (authority, _) = try LocalAuthority.open(in: folder, now: now)
        let (identity, issued) = try authority.serverIdentity(for: names, now: now)
        #expect(issued)
        #expect(identity.names.dnsNames == ["localhost"])
        #expect(identity.names.ipAddresses == [[127, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]])
        #expect(identity.certificate.issuer == authority.certificate.subject)
        let lifetime = identity.certificate.notValidAfter.timeIntervalSince(identity.certificate.notValidBefore)
        #expect(lifetime <= LocalAuthority.serverLifetime + 300)
        #expect(try identity.certificate.extensions.basicConstraints == .notCertificateAuthority)
        #expect(try identity.certificate.extensions.extendedKeyUsage?.contains(.serverAuth) == true)

        // A year on: the same certificate.
        let (later, issuedLater) = try authority.serverIdentity(for: names, now: now.addingTimeInterval(365 * 86400))
        #expect(!issuedLater)
        #expect(later.certificate == identity.certificate)
        // Within 30 days of its end: a new one.
        let nearEnd = identity.certificate.notValidAfter.addingTimeInterval(-20 * 86400)
        let (renewed, issuedNearEnd) = try authority.serverIdentity(for: names, now: nearEnd)
        #expect(issuedNearEnd)
        #expect(renewed.certificate.notValidAfter > identity.certificate.notValidAfter)
    }

    @Test func aNewNameIssuesANewCertificateFromTheSameCA() throws {
        let folder = try folder()
        let (authority, _) = try LocalAuthority.open(in: folder, now: now)
        let (first, _) = try authority.serverIdentity(for: names, now: now)
        let wider = ServerNames(host: "0.0.0.0", allowHosts: ["app.test", "*.app.test", "[fd00::1]"])
        let (second, issued) = try authority.serverIdentity(for: wider, now: now)
        #expect(issued)
        #expect(second.certificate != first.certificate)
        #expect(second.names.dnsNames == ["localhost", "app.test", "*.app.test"])
        #expect(second.names.ipAddresses.count == 3, "0.0.0.0 is where to listen, not a name")
        #expect(second.certificate.issuer == authority.certificate.subject)
    }

    @Test func aCertificateFromAnotherCAIsReplaced() throws {
        let one = try folder()
        let (authority, _) = try LocalAuthority.open(in: one, now: now)
        _ = try authority.serverIdentity(for: names, now: now)
        // The CA made again (its folder's CA files removed): the old server certificate is not its.
        unlink(one + "/ca.pem")
        unlink(one + "/ca-key.pem")
        let (fresh, created) = try LocalAuthority.open(in: one, now: now)
        #expect(created)
        let (identity, issued) = try fresh.serverIdentity(for: names, now: now)
        #expect(issued)
        #expect(identity.certificate.issuer == fresh.certificate.subject)
    }

    @Test func theUsersPairIsChecked() throws {
        let folder = try folder()
        let (authority, _) = try LocalAuthority.open(in: folder, now: now)
        let (identity, _) = try authority.serverIdentity(for: names, now: now)
        let certificate = folder + "/server.pem"
        let key = folder + "/server-key.pem"
        _ = try ServerIdentity.load(certificateFile: certificate, keyFile: key, now: now)

        func code(_ body: () throws -> Void) -> TLSError.Code? {
            do {
                try body()
                return nil
            } catch let error as TLSError {
                #expect(!error.description.contains("\n") && !error.description.contains("PRIVATE KEY-----"), "one line, no key")
                return error.code
            } catch {
                Issue.record("not a TLSError: \(error)")
                return nil
            }
        }
        #expect(code { _ = try ServerIdentity.load(certificateFile: certificate, keyFile: folder + "/ca-key.pem", now: now) } == .mismatch)
        #expect(code {
            _ = try ServerIdentity.load(certificateFile: certificate, keyFile: key, now: identity.certificate.notValidAfter + 1)
        } == .expired)
        #expect(code {
            _ = try ServerIdentity.load(certificateFile: certificate, keyFile: key, now: identity.certificate.notValidBefore - 1)
        } == .notYetValid)
        #expect(code { _ = try ServerIdentity.load(certificateFile: key, keyFile: key, now: now) } == .badCertificate)
        #expect(code { _ = try ServerIdentity.load(certificateFile: certificate, keyFile: certificate, now: now) } == .badKey)
        #expect(code { _ = try ServerIdentity.load(certificateFile: folder + "/nothing", keyFile: key, now: now) } == .unreadable)
    }

    @Test func aFolderThatCannotBeMadeIsAnError() throws {
        let folder = try folder()
        _ = try LocalAuthority.open(in: folder, now: now)
        do {
            _ = try LocalAuthority.open(in: folder + "/ca.pem/inside", now: now)
            Issue.record("a folder under a file was made")
        } catch {
            #expect(error.code == .unwritable)
        }
    }

    @Test(arguments: [
        ("localhost", ["localhost"], 0), ("::1", [], 1), ("[::1]", [], 1), ("::", [], 0), ("example.test", ["example.test"], 0),
    ])
    func namesAreSortedIntoDNSNamesAndAddresses(name: String, dns: [String], addresses: Int) {
        let names = ServerNames(dnsNames: [], ipAddresses: []).adding(name)
        #expect(names.dnsNames == dns)
        #expect(names.ipAddresses.count == addresses)
    }
}
