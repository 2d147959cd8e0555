import Hummingbird
import NIOCore

/// Hummingbird's basic context plus the connection's channel: an event stream watches the
/// channel's close instead of running a task per stream to notice its client leave.
struct BeaconRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }
}
