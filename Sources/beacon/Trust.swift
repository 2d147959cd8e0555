import ArgumentParser
import BeaconServer
import BeaconTLS

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `beacon trust [--install | --uninstall] [--store all|system|nss]`: what trusting the local CA
/// (made by `serve --https`) takes on this machine, or doing it — as mkcert's `-install` does.
struct Trust: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how to trust Beacon's local certificate authority (for serve --https), or trust it."
    )

    enum Store: String, ExpressibleByArgument, CaseIterable {
        /// Debian's system store: curl, wget, Python's ssl, `beacon publish`.
        case system
        /// NSS databases: Chromium and Chrome (~/.pki/nssdb), Firefox's profiles.
        case nss
        case all
    }

    @Flag(help: "Add the CA to the stores (the system store needs root).")
    var install = false

    @Flag(help: "Remove the CA from the stores.")
    var uninstall = false

    @Option(help: "Which stores: system (update-ca-certificates), nss (Chromium, Chrome, Firefox), or all.")
    var store: Store = .all

    /// Where Debian's update-ca-certificates takes local CAs from.
    static let systemFolder = "/usr/local/share/ca-certificates"
    static let systemFile = "beacon-local-ca.crt"

    func validate() throws {
        if install, uninstall { throw ValidationError("--install and --uninstall do not go together") }
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let folder = LocalAuthority.defaultFolder(environment: environment) else {
            fail("neither XDG_DATA_HOME nor HOME is set: nowhere to find the local CA")
        }
        let authority: LocalAuthority
        do {
            authority = try LocalAuthority.open(in: folder, now: Date()).authority
        } catch {
            fail(error.description)
        }
        let caFile = folder + "/" + LocalAuthority.certificateFile
        let nickname = authority.nickname
        let databases = Self.nssDatabases(home: environment["HOME"])
        let systemTarget = Self.systemFolder + "/" + Self.systemFile
        let doesSystem = store != .nss
        let doesNSS = store != .system

        if !install && !uninstall {
            print("Beacon's local CA: \(caFile)")
            print("Pages served with 'beacon serve --https' are trusted once this CA is. 'beacon trust --install' does this:")
            if doesSystem {
                print("  # the system store (curl, wget, Python, beacon publish):")
                print("  sudo cp '\(caFile)' \(systemTarget) && sudo update-ca-certificates")
            }
            if doesNSS {
                print("  # Chromium, Chrome and Firefox (NSS databases; certutil is in Debian's libnss3-tools):")
                for database in databases {
                    print("  certutil -d sql:\(database) -A -t C,, -n '\(nickname)' -i '\(caFile)'")
                }
            }
            return
        }

        var failures: [String] = []
        if doesSystem {
            if let failure = install ? Self.installSystem(caFile, to: systemTarget) : Self.uninstallSystem(systemTarget) {
                failures.append(failure)
            } else {
                print(install ? "added to the system store: \(systemTarget)" : "removed from the system store")
            }
        }
        if doesNSS {
            guard Self.run(["certutil", "-H"], quiet: true) != 127 else {
                fail("certutil not found: install it (Debian: apt-get install libnss3-tools), then run this again")
            }
            for database in databases {
                if install {
                    if !Self.exists(database + "/cert9.db") {
                        var path = ""
                        for part in database.split(separator: "/") {
                            path += "/" + part
                            _ = mkdir(path, 0o700)
                        }
                        if Self.run(["certutil", "-d", "sql:" + database, "-N", "--empty-password"], quiet: true) != 0 {
                            failures.append("cannot make the NSS database \(database)")
                            continue
                        }
                    }
                    if Self.run(["certutil", "-d", "sql:" + database, "-A", "-t", "C,,", "-n", nickname, "-i", caFile]) == 0 {
                        print("trusted in \(database)")
                    } else {
                        failures.append("certutil could not add the CA to \(database)")
                    }
                } else if Self.exists(database + "/cert9.db") {
                    // Absent already is fine: uninstalling twice is not an error.
                    _ = Self.run(["certutil", "-d", "sql:" + database, "-D", "-n", nickname], quiet: true)
                    print("removed from \(database)")
                }
            }
        }
        if let first = failures.first { fail(failures.count == 1 ? first : first + " (and \(failures.count - 1) more)") }
    }

    /// Chromium's and Chrome's database, and every Firefox profile's.
    static func nssDatabases(home: String?) -> [String] {
        guard let home else { return [] }
        var databases = [home + "/.pki/nssdb"]
        let profiles = home + "/.mozilla/firefox"
        if let directory = opendir(profiles) {
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasPrefix(".") { continue }
                if Self.exists(profiles + "/" + name + "/cert9.db") { databases.append(profiles + "/" + name) }
            }
        }
        return databases
    }

    static func installSystem(_ caFile: String, to target: String) -> String? {
        guard access(systemFolder, W_OK) == 0 else {
            return "the system store needs root: sudo cp '\(caFile)' \(target) && sudo update-ca-certificates"
        }
        guard run(["cp", caFile, target]) == 0 else { return "cannot copy the CA to \(target)" }
        guard run(["update-ca-certificates"], quiet: true) == 0 else { return "update-ca-certificates failed" }
        return nil
    }

    static func uninstallSystem(_ target: String) -> String? {
        guard Self.exists(target) else { return nil }
        guard unlink(target) == 0 else {
            return "cannot remove \(target): \(String(cString: strerror(errno))) (sudo rm \(target) && sudo update-ca-certificates --fresh)"
        }
        guard run(["update-ca-certificates", "--fresh"], quiet: true) == 0 else { return "update-ca-certificates failed" }
        return nil
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Runs a program found on PATH and waits for it: its exit status, 127 if it cannot be started.
    static func run(_ arguments: [String], quiet: Bool = false) -> Int32 {
        // posix_spawn, not Foundation's Process: the binary carries no more of Foundation than it must.
        var pid = pid_t()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if quiet {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        var argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        guard posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ) == 0 else { return 127 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
