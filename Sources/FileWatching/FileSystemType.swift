/// A file system as `statfs` names it: its `f_type` magic number (see `man 2 statfs` and
/// `linux/magic.h`), and whether inotify is blind on it.
///
/// inotify reports what passes through this kernel's VFS. On network and host-shared file
/// systems the edits that matter are made elsewhere — by Windows on WSL2's `/mnt/c`, by the host
/// on a Docker Desktop mount, by another machine on NFS — and no event is ever raised for them.
public struct FileSystemType: Hashable, Sendable {
    /// The `f_type` magic number.
    public let magic: UInt32

    public init(magic: UInt32) {
        self.magic = magic
    }

    /// The file systems inotify is blind on, by magic number, with the name users know them by.
    /// FUSE covers sshfs, rclone, and Docker Desktop's virtiofs and gRPC-FUSE mounts alike.
    static let blind: [UInt32: String] = [
        0x0102_1997: "9p",  // V9FS_MAGIC: WSL2's /mnt/c, QEMU and Lima shares
        0x6969: "NFS",  // NFS_SUPER_MAGIC
        0xFF53_4D42: "CIFS",  // CIFS_SUPER_MAGIC
        0xFE53_4D42: "SMB2",  // SMB2_SUPER_MAGIC
        0x517B: "SMB",  // SMB_SUPER_MAGIC
        0x6573_5546: "FUSE",  // FUSE_SUPER_MAGIC
        0x786F_4256: "vboxsf",  // VirtualBox shared folders
        0x00C3_6400: "CephFS",  // CEPH_SUPER_MAGIC
        0x5346_414F: "AFS",  // AFS_SUPER_MAGIC
        0x6B41_4653: "AFS",  // AFS_FS_MAGIC (kAFS)
        0x7375_7245: "Coda",  // CODA_SUPER_MAGIC
        0x0BD0_0BD0: "Lustre",  // LL_SUPER_MAGIC
    ]

    /// The file system's name when inotify sees no changes there (so it must be polled); nil when
    /// inotify works.
    public var blindName: String? { Self.blind[magic] }

    /// Whether inotify misses changes on this file system.
    public var inotifyIsBlind: Bool { blindName != nil }
}
