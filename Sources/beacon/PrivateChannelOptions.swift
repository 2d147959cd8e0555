import ArgumentParser
import BeaconAuth
import BeaconServer

/// `serve`'s private channels: `--private PATTERN`, the JWT key options, `--jwt-cookie`, `--jwt-leeway`.
struct PrivateChannelOptions: ParsableArguments {
    @Option(
        name: .customLong("private"),
        help:
            "Channels whose subscribers need a token granting them (repeatable): a name or a glob, * within a dot segment, ** across, e.g. 'user.**'."
    )
    var privateChannels: [String] = []

    @OptionGroup var jwt: JWTOptions

    @Option(help: "The cookie an EventSource sends its token in.")
    var jwtCookie: String = ServerConfiguration.defaults.jwtCookie

    @Option(help: "Seconds of clock skew allowed on a token's exp and nbf; a stream ends this long after its exp.")
    var jwtLeeway: Int = Int(ServerConfiguration.defaults.jwtLeeway.components.seconds)

    func validate() throws {
        do {
            for pattern in privateChannels { _ = try ChannelPattern(pattern) }
            _ = try jwt.key(signing: false)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// The options mapped onto the configuration (`validate` has checked them).
    func apply(to configuration: inout ServerConfiguration) {
        configuration.privateChannels = privateChannels.compactMap { try? ChannelPattern($0) }
        configuration.jwtKey = try? jwt.key(signing: false)
        configuration.jwtIssuer = jwt.jwtIssuer
        configuration.jwtAudience = jwt.jwtAudience
        configuration.jwtCookie = jwtCookie
        configuration.jwtLeeway = .seconds(jwtLeeway)
    }
}
