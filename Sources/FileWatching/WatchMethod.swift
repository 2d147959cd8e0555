/// Whether folders may be polled: where inotify is blind (the default), everywhere (`--poll`),
/// or nowhere (`--no-poll`).
public enum PollingPolicy: Sendable, Equatable {
    case automatic, always, never
}

/// How one watched folder is watched, and why when it is polled. Chosen by pure functions of what
/// `statfs` and inotify said, so the choice is tested with tables rather than mounts.
public enum WatchMethod: Sendable, Equatable {
    case inotify
    /// `reason` ends the line that tells the user: `watching DIR by polling every 1 s: REASON`.
    case polling(reason: String)

    /// The method for a folder on `fileSystem` (nil: `statfs` failed; inotify then says what is
    /// wrong) under `policy`.
    public static func choose(fileSystem: FileSystemType?, policy: PollingPolicy) -> WatchMethod {
        switch policy {
        case .always: .polling(reason: "asked for (--poll or BEACON_POLL=1)")
        case .never: .inotify
        case .automatic:
            fileSystem?.blindName.map { .polling(reason: "\($0) (inotify sees no changes there)") } ?? .inotify
        }
    }

    /// The method once inotify failed to start on a folder with `error`: polling, naming the limit
    /// to raise — unless `policy` forbids it (nil: the folder goes unwatched).
    public static func fallback(after error: WatchError, policy: PollingPolicy) -> WatchMethod? {
        guard policy != .never, error.code != .alreadyRunning else { return nil }
        return .polling(reason: error.description)
    }
}
