import Testing

@testable import FileWatching

/// Which folders are polled: a pure function of `statfs`'s `f_type`, the policy, and what inotify said.
@Suite struct WatchMethodTests {
    @Test(
        arguments: [
            (0x0102_1997, "9p"),  // WSL2's /mnt/c
            (0x6969, "NFS"),
            (0xFF53_4D42, "CIFS"),
            (0xFE53_4D42, "SMB2"),
            (0x517B, "SMB"),
            (0x6573_5546, "FUSE"),  // sshfs, Docker Desktop's virtiofs
            (0x786F_4256, "vboxsf"),
            (0x00C3_6400, "CephFS"),
        ] as [(UInt32, String)]
    )
    func fileSystemsInotifyIsBlindOnArePolled(_ magic: UInt32, _ name: String) {
        let fileSystem = FileSystemType(magic: magic)
        #expect(fileSystem.blindName == name)
        #expect(
            WatchMethod.choose(fileSystem: fileSystem, policy: .automatic)
                == .polling(reason: "\(name) (inotify sees no changes there)")
        )
    }

    @Test(
        arguments: [
            0xEF53,  // ext2/3/4
            0x0102_1994,  // tmpfs
            0x5846_5342,  // XFS
            0x9123_683E,  // Btrfs
            0x794C_7630,  // overlayfs (Docker's own layers: inotify works)
            0x2FC1_2FC1,  // ZFS
            0x6165_6673,  // bcachefs
        ] as [UInt32]
    )
    func localFileSystemsAreWatchedWithInotify(_ magic: UInt32) {
        #expect(!FileSystemType(magic: magic).inotifyIsBlind)
        #expect(WatchMethod.choose(fileSystem: FileSystemType(magic: magic), policy: .automatic) == .inotify)
    }

    @Test func thePolicyOverridesTheFileSystem() {
        let nfs = FileSystemType(magic: 0x6969)
        let ext4 = FileSystemType(magic: 0xEF53)
        #expect(
            WatchMethod.choose(fileSystem: ext4, policy: .always)
                == .polling(reason: "asked for (--poll or BEACON_POLL=1)")
        )
        #expect(WatchMethod.choose(fileSystem: nfs, policy: .never) == .inotify)
        // statfs failed: inotify, which then says what is wrong with the folder.
        #expect(WatchMethod.choose(fileSystem: nil, policy: .automatic) == .inotify)
        #expect(WatchMethod.choose(fileSystem: nil, policy: .always) != .inotify)
    }

    @Test func inotifyFailingMeansPollingWithTheLimitToRaise() {
        let limit = WatchError(.watchLimitReached, WatchError.watchLimitReachedAdvice, errno: 28)
        guard case .polling(let reason)? = WatchMethod.fallback(after: limit, policy: .automatic) else {
            Issue.record("not polled")
            return
        }
        #expect(reason.contains("sudo sysctl fs.inotify.max_user_watches="))
        let instances = WatchError(.instanceLimitReached, WatchError.instanceLimitAdvice, errno: 24)
        guard case .polling(let reason)? = WatchMethod.fallback(after: instances, policy: .automatic) else {
            Issue.record("not polled")
            return
        }
        #expect(reason.contains("fs.inotify.max_user_instances"))
        let noInotify = WatchError(.system, "could not start inotify: Function not implemented", errno: 38)
        #expect(WatchMethod.fallback(after: noInotify, policy: .always) != nil)
        // --no-poll: the folder goes unwatched rather than polled.
        #expect(WatchMethod.fallback(after: limit, policy: .never) == nil)
        #expect(WatchMethod.fallback(after: WatchError(.alreadyRunning, "x"), policy: .automatic) == nil)
    }

    @Test func statfsOfATemporaryFolderIsALocalFileSystem() throws {
        let tree = try TempTree()
        let magic = try Syscall.fileSystemType(tree.path).get()
        #expect(!FileSystemType(magic: magic).inotifyIsBlind)
        #expect(throws: Syscall.Errno.self) { try Syscall.fileSystemType(tree.path + "/missing").get() }
    }
}
