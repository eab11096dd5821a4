import ArgumentParser

@main
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker-cli",
        abstract: "SSE, WebSocket and REST notification broker.",
        subcommands: [Serve.self, Publish.self, Subscribe.self, Bench.self, Token.self],
        defaultSubcommand: Serve.self
    )
}
