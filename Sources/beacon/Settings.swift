import ArgumentParser
import Configuration
import SystemPackage

// JSONSerialization (the file's keys): all of Foundation, which swift-configuration's JSON files
// link in already.
import Foundation

/// `serve`'s settings from the environment (`BEACON_PORT`, `BEACON_ALLOW_HOST=a,b`, …) and a
/// config file (`--config FILE`, else `./beacon.json`), read through swift-configuration, below
/// the command line: command line > environment > file > defaults.
///
/// Every `serve` option is a setting, under its long name; the list is `serve`'s own, read from
/// its argument definitions (nothing here repeats an option or a default). What the command line
/// lacks is added to it as arguments, so a setting meets exactly the checks the option does.
struct Settings {
    /// Where a setting's value came from.
    enum Source: Equatable, CustomStringConvertible {
        case commandLine
        case environment(String)
        case file(String)
        case defaultValue

        var description: String {
            switch self {
            case .commandLine: "command line"
            case .environment(let name): "environment \(name)"
            case .file(let path): path
            case .defaultValue: "default"
            }
        }
    }

    /// One `serve` option as its definition describes it.
    struct Option {
        enum Kind { case flag, single, repeating, positional }
        let name: String
        let kind: Kind
        let defaultValue: String?

        /// The environment variable naming it: `BEACON_` and the name, upper-cased, `-` as `_`.
        var environmentName: String { "BEACON_" + name.uppercased().replacingOccurrences(of: "-", with: "_") }
    }

    /// A setting's value and where it came from.
    struct Value {
        let option: Option
        let text: [String]
        let source: Source
    }

    static let defaultFile = "beacon.json"
    /// Settings whose values are never printed.
    static let secrets: Set<String> = ["token", "jwt-key"]
    /// Older names kept working: `BEACON_REDIS_URL` for `redis`.
    static let aliases = ["redis": "BEACON_REDIS_URL"]

    let arguments: [String]
    let values: [Value]

    /// `serve`'s options, from ArgumentParser's description of them (`--experimental-dump-help`).
    static func options() -> [Option] {
        guard let json = try? dumpedHelp(),
            let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let command = root["command"] as? [String: Any],
            let arguments = command["arguments"] as? [[String: Any]]
        else { return [] }
        return arguments.compactMap { argument in
            let kind = argument["kind"] as? String
            let names = (argument["names"] as? [[String: Any]]) ?? []
            let long = names.first { $0["kind"] as? String == "long" }?["name"] as? String
            let defaultValue = argument["defaultValue"] as? String
            switch kind {
            case "positional":
                guard let name = argument["valueName"] as? String else { return nil }
                return Option(name: name, kind: .positional, defaultValue: defaultValue)
            case "flag":
                guard let long, !["help", "version", "config"].contains(long) else { return nil }
                return Option(name: long, kind: .flag, defaultValue: nil)
            case "option":
                guard let long, long != "config" else { return nil }
                let repeating = argument["isRepeating"] as? Bool ?? false
                return Option(name: long, kind: repeating ? .repeating : .single, defaultValue: defaultValue)
            default:
                return nil
            }
        }
    }

    private static func dumpedHelp() throws -> String {
        do {
            _ = try Beacon.parseAsRoot(["serve", "--experimental-dump-help"])
        } catch {
            return Beacon.fullMessage(for: error)
        }
        throw SettingsError("no description of serve's options")
    }

    /// `serve`'s command line (after `serve`), completed from the environment and the config file.
    static func resolve(
        commandLine: [String],
        environment: [String: String]
    ) async throws(SettingsError) -> Settings {
        let options = options()
        // A flag and its opposite (`--poll`, `--no-poll`) are one setting: the command line's wins.
        let given = Set(commandLine.flatMap { argument -> [String] in
            guard argument.hasPrefix("--") else { return [] }
            let name = String(argument.dropFirst(2).prefix { $0 != "=" })
            return [name, name.hasPrefix("no-") ? String(name.dropFirst(3)) : "no-" + name]
        })
        // The file: --config's, else ./beacon.json when there is one.
        var path = defaultFile
        var explicit = false
        if let index = commandLine.firstIndex(where: { $0 == "--config" || $0.hasPrefix("--config=") }) {
            explicit = true
            if commandLine[index].hasPrefix("--config=") {
                path = String(commandLine[index].dropFirst("--config=".count))
            } else if index + 1 < commandLine.count {
                path = commandLine[index + 1]
            } else {
                throw SettingsError("--config needs a file")
            }
        }
        let file = try await fileReader(path: path, explicit: explicit, options: options)
        let environmentReader = ConfigReader(
            provider: EnvironmentVariablesProvider(
                environmentVariables: environment,
                secretsSpecifier: .specific(Set(secrets.map { "BEACON_" + $0.uppercased().replacingOccurrences(of: "-", with: "_") }))
            )
        )

        var arguments = commandLine
        var values: [Value] = []
        let positionalGiven = Self.hasPositional(commandLine, options: options)
        for option in options {
            if option.kind == .positional ? positionalGiven : given.contains(option.name) {
                values.append(Value(option: option, text: [], source: .commandLine))
                continue
            }
            var found: (text: [String], source: Source)?
            let variable = aliases[option.name].flatMap { environment[$0] != nil ? $0 : nil } ?? option.environmentName
            if environment[variable] != nil {
                found = (try read(option, from: environmentReader, key: variable, shown: variable), .environment(variable))
            } else if let file, file.has(option.name) {
                let shown = "\(file.path): \"\(option.name)\""
                found = (try read(option, from: file.reader, key: option.name, shown: shown), .file(file.path))
            }
            guard let found else {
                if let defaultValue = option.defaultValue {
                    values.append(Value(option: option, text: [defaultValue], source: .defaultValue))
                }
                continue
            }
            values.append(Value(option: option, text: found.text, source: found.source))
            switch option.kind {
            case .flag: if found.text == ["true"] { arguments.append("--" + option.name) }
            case .single, .repeating: arguments += found.text.map { "--\(option.name)=\($0)" }
            case .positional: arguments += found.text
            }
        }
        return Settings(arguments: arguments, values: values)
    }

    /// Whether `serve`'s command line names its directory (an argument that is no option or an option's value).
    private static func hasPositional(_ commandLine: [String], options: [Option]) -> Bool {
        let flags = Set(options.filter { $0.kind == .flag }.map(\.name) + ["help", "version"])
        var index = 0
        while index < commandLine.count {
            let argument = commandLine[index]
            if argument == "--" { return index + 1 < commandLine.count }
            if argument.hasPrefix("-") {
                let name = String(argument.drop { $0 == "-" }.prefix { $0 != "=" })
                if !argument.contains("="), !flags.contains(name), argument != "-h" { index += 1 }
            } else {
                return true
            }
            index += 1
        }
        return false
    }

    /// A setting's value as command-line text, or an error naming the setting and where it was.
    private static func read(
        _ option: Option,
        from reader: ConfigReader,
        key: String,
        shown: String
    ) throws(SettingsError) -> [String] {
        let environment = key.hasPrefix("BEACON_")
        let configKey = ConfigKey([key])
        let isSecret = secrets.contains(option.name)
        switch option.kind {
        case .flag:
            if let value = try? reader.requiredBool(forKey: configKey) { return [value ? "true" : "false"] }
            if let text = reader.string(forKey: configKey)?.lowercased() {
                if ["1", "true", "yes", "on"].contains(text) { return ["true"] }
                if ["0", "false", "no", "off", ""].contains(text) { return ["false"] }
            }
            throw SettingsError("\(shown) must be true or false")
        case .repeating:
            if let values = try? reader.requiredStringArray(forKey: configKey, isSecret: isSecret) {
                return values.filter { !$0.isEmpty }
            }
            if environment, let text = reader.string(forKey: configKey, isSecret: isSecret) {
                return text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            }
            throw SettingsError("\(shown) must be a list of strings")
        case .single, .positional:
            if let text = try? reader.requiredString(forKey: configKey, isSecret: isSecret) { return [text] }
            if let number = try? reader.requiredInt(forKey: configKey) { return [String(number)] }
            if let number = try? reader.requiredDouble(forKey: configKey) { return [String(number)] }
            throw SettingsError("\(shown) must be a string or a number")
        }
    }

    /// The config file, checked: JSON, an object, every key an option.
    private struct File {
        let path: String
        let reader: ConfigReader
        let keys: Set<String>
        func has(_ key: String) -> Bool { keys.contains(key) }
    }

    private static func fileReader(path: String, explicit: Bool, options: [Option]) async throws(SettingsError) -> File? {
        guard let data = FileManager.default.contents(atPath: path) else {
            if explicit { throw SettingsError("cannot read the config file \(path)") }
            return nil
        }
        // The keys, to refuse one that names no option (a typo must not be silently ignored).
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SettingsError("\(path): not a JSON object of settings (e.g. {\"port\": 8081})")
        }
        let names = Set(options.map(\.name))
        for key in object.keys.sorted() where !names.contains(key) {
            let suggestion = options.map(\.name).min { distance(key, $0) < distance(key, $1) }
            let hint = suggestion.flatMap { distance(key, $0) <= 2 ? " (did you mean \"\($0)\"?)" : nil } ?? ""
            throw SettingsError("\(path): \"\(key)\" is not an option\(hint)")
        }
        do {
            let provider = try await FileProvider<JSONSnapshot>(
                parsingOptions: .init(secretsSpecifier: .specific(secrets)),
                filePath: FilePath(path)
            )
            return File(path: path, reader: ConfigReader(provider: provider), keys: Set(object.keys))
        } catch {
            throw SettingsError("\(path): \(error)")
        }
    }

    /// Edit distance with transpositions (`prot` is one from `port`), for "did you mean".
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }

    /// A value as `beacon config` shows it: secrets redacted, a Redis URL's password too.
    static func shown(_ value: Value) -> String {
        if secrets.contains(value.option.name) { return "<redacted>" }
        var texts = value.text
        if value.option.name == "redis" {
            texts = texts.map { text in
                guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://") else { return text }
                return String(text[..<scheme.upperBound]) + "<redacted>" + String(text[at...])
            }
        }
        switch value.option.kind {
        case .repeating: return "[" + texts.joined(separator: ", ") + "]"
        default: return texts.first ?? ""
        }
    }
}

/// A setting that cannot be used: one line naming it and where it came from.
struct SettingsError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
