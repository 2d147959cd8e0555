import BeaconTestSupport
import Foundation
import Testing

@testable import BeaconServer

/// `POST /__beacon/publish` and `beacon publish`, checked through what subscribers receive.
@Suite struct PublishTests {
    func json(_ response: RawResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
    }

    func errorField(_ response: RawResponse) -> String? {
        (json(response)["error"] as? [String: Any])?["field"] as? String
    }

    @Test func publishedEventsReachSubscribersFramedAsTheSpecSays() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let chat = try await SSEClient.connect(port: port, path: "/__beacon/events?channel=chat")
            _ = try await chat.next { $0.name == "hello" }
            let cases: [(body: String, name: String, data: String)] = [
                (#"{"channel":"chat","data":"hi"}"#, "message", "hi"),
                (#"{"channel":"chat","event":"note","data":"a\nb\r\nc\rd\n\ne"}"#, "note", "a\nb\nc\nd\n\ne"),
                (#"{"channel":"chat","data":""}"#, "message", ""),
                (
                    #"{"channel":"chat","data":{"b": 1,  "a": [1.50, true, null, "x y"]}}"#, "message",
                    #"{"b":1,"a":[1.50,true,null,"x y"]}"#
                ),
                (#"{"channel":"chat","data":42}"#, "message", "42"),
                (#"{"channel":"chat","data":"ünïcödé ✓"}"#, "message", "ünïcödé ✓"),
            ]
            for (body, name, data) in cases {
                let response = try await RawHTTP.post(port: port, body: body)
                #expect(response.status == 202, "\(body): \(response.text)")
                let id = json(response)["id"] as? String
                let event = try await chat.next { $0.name != "hello" }
                #expect(event.name == name)
                #expect(event.data == data, "\(body)")
                #expect(event.id == id)
            }
            let form = try await RawHTTP.post(
                port: port,
                contentType: "application/x-www-form-urlencoded",
                body: "channel=chat&data=hello+form%21%0Aline2"
            )
            #expect(form.status == 202)
            let formEvent = try await chat.next { $0.name != "hello" }
            #expect(formEvent.data == "hello form!\nline2")
        }
    }

    @Test func defaultChannelAndMultiChannelSubscriptions() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let both = try await SSEClient.connect(port: port, path: "/__beacon/events?channel=chat&channel=news")
            let page = try await SSEClient.connect(port: port)
            _ = try await both.next { $0.name == "hello" }
            _ = try await page.next { $0.name == "hello" }
            for (channel, data) in [("chat", "c1"), ("news", "n1"), ("default", "d1"), ("chat", "c2")] {
                #expect(
                    try await RawHTTP.post(port: port, body: #"{"channel":"\#(channel)","data":"\#(data)"}"#).status
                        == 202
                )
            }
            #expect(try await RawHTTP.post(port: port, body: #"{"data":"d2"}"#).status == 202)
            #expect(try await both.events(count: 4).dropFirst().map(\.data) == ["c1", "n1", "c2"])
            #expect(try await page.events(count: 3).dropFirst().map(\.data) == ["d1", "d2"])
        }
    }

    @Test func replayAfterReconnectHasNoGapAndNoDuplicate() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site, configure: { $0.historySize = 50 }) { port in
            var ids: [String] = []
            for i in 1...10 {
                let response = try await RawHTTP.post(port: port, body: #"{"channel":"chat","data":"e\#(i)"}"#)
                ids.append(json(response)["id"] as! String)
            }
            let resumed = try await SSEClient.connect(
                port: port,
                path: "/__beacon/events?channel=chat",
                headers: ["Last-Event-ID": ids[3]]
            )
            _ = try await resumed.next { $0.name == "hello" }
            #expect(try await RawHTTP.post(port: port, body: #"{"channel":"chat","data":"e11"}"#).status == 202)
            let events = try await resumed.events(count: 8).filter { $0.name == "message" }
            #expect(events.map(\.data) == (5...11).map { "e\($0)" })
            // Beyond the history: reset first.
            for i in 12...80 { _ = try await RawHTTP.post(port: port, body: #"{"channel":"chat","data":"e\#(i)"}"#) }
            let late = try await SSEClient.connect(
                port: port,
                path: "/__beacon/events?channel=chat",
                headers: ["Last-Event-ID": ids[0]]
            )
            #expect(try await late.events(count: 1).first?.name == "reset")
            let everything = try await SSEClient.connect(
                port: port,
                path: "/__beacon/events?channel=chat&lastEventId=earliest"
            )
            let held = try await everything.events(count: 51)
            #expect(held.first?.data == "e31")
            #expect(held.dropLast().last?.data == "e80")
        }
    }

    @Test func publisherIDsMakeRetriesSafe() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let first = try await RawHTTP.post(port: port, body: #"{"channel":"chat","data":"once","id":"job-1"}"#)
            let retry = try await RawHTTP.post(port: port, body: #"{"channel":"chat","data":"once","id":"job-1"}"#)
            #expect(json(first)["id"] as? String == json(retry)["id"] as? String)
            let stream = try await SSEClient.connect(
                port: port,
                path: "/__beacon/events?channel=chat&lastEventId=earliest"
            )
            #expect(try await stream.events(count: 2).map(\.name) == ["message", "hello"])
        }
    }

    struct BadCase: Sendable, CustomTestStringConvertible {
        let contentType: String?
        let body: String
        let status: Int
        let field: String?
        var testDescription: String { "\(contentType ?? "none") \(body.prefix(40))" }
    }

    static let badCases: [BadCase] = [
        BadCase(contentType: "application/json", body: "{", status: 400, field: nil),
        BadCase(contentType: "application/json", body: "[1,2]", status: 400, field: nil),
        BadCase(contentType: "application/json", body: "\"just a string\"", status: 400, field: nil),
        BadCase(contentType: "application/json", body: #"{"channel":"chat"}"#, status: 400, field: "data"),
        BadCase(
            contentType: "application/json",
            body: #"{"channel":"bad name","data":"x"}"#,
            status: 400,
            field: "channel"
        ),
        BadCase(contentType: "application/json", body: #"{"channel":"","data":"x"}"#, status: 400, field: "channel"),
        BadCase(contentType: "application/json", body: #"{"channel":5,"data":"x"}"#, status: 400, field: "channel"),
        BadCase(contentType: "application/json", body: #"{"event":"a\nb","data":"x"}"#, status: 400, field: "event"),
        BadCase(contentType: "application/json", body: #"{"event":"a\rb","data":"x"}"#, status: 400, field: "event"),
        BadCase(
            contentType: "application/json",
            body: #"{"event":"a\u0000b","data":"x"}"#,
            status: 400,
            field: "event"
        ),
        BadCase(contentType: "application/json", body: #"{"id":"a\nb","data":"x"}"#, status: 400, field: "id"),
        BadCase(contentType: "application/json", body: #"{"id":"a\u0000b","data":"x"}"#, status: 400, field: "id"),
        BadCase(contentType: "application/json", body: #"{"chanel":"x","data":"y"}"#, status: 400, field: "chanel"),
        BadCase(
            contentType: "application/json",
            body: #"{"event":"fragment","data":"<b>"}"#,
            status: 400,
            field: "data"
        ),
        BadCase(
            contentType: "application/json",
            body: #"{"event":"fragment","data":{"html":"x"}}"#,
            status: 400,
            field: "data"
        ),
        BadCase(
            contentType: "application/json",
            body: ##"{"event":"fragment","data":{"selector":"#a","html":"x","swap":"sideways"}}"##,
            status: 400,
            field: "data"
        ),
        BadCase(contentType: "application/x-www-form-urlencoded", body: "channel=chat", status: 400, field: "data"),
        BadCase(contentType: "application/x-www-form-urlencoded", body: "data=%zz", status: 400, field: nil),
        BadCase(contentType: "application/x-www-form-urlencoded", body: "data=a&data=b", status: 400, field: "data"),
        BadCase(contentType: "text/plain", body: "hello", status: 415, field: nil),
        BadCase(contentType: nil, body: "hello", status: 415, field: nil),
        BadCase(contentType: "multipart/form-data; boundary=x", body: "--x--", status: 415, field: nil),
        BadCase(
            contentType: "application/json",
            body: #"{"data":"\#(String(repeating: "x", count: 70_000))"}"#,
            status: 413,
            field: nil
        ),
    ]

    @Test(arguments: badCases)
    func badInputIsRefusedAndNothingIsPublished(_ bad: BadCase) async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let response = try await RawHTTP.post(port: port, contentType: bad.contentType, body: bad.body)
            #expect(response.status == bad.status, "\(response.text)")
            #expect(response.header("content-type") == "application/json; charset=utf-8")
            let message = (json(response)["error"] as? [String: Any])?["message"] as? String
            #expect(message?.isEmpty == false)
            if let field = bad.field { #expect(errorField(response) == field) }
            let status = json(try await RawHTTP.get(port: port, "/__beacon/status"))
            #expect(status["eventsPublished"] as? Int == 0)
        }
    }

    @Test func otherMethodsGet405() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            for method in ["GET", "PUT", "DELETE", "PATCH"] {
                let response = try await RawHTTP.get(port: port, "/__beacon/publish", method: method)
                #expect(response.status == 405, "\(method)")
                #expect(response.header("allow") == "POST")
            }
        }
    }

    @Test func crossSitePublishesAreRefused() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let body = #"{"data":"x"}"#
            let evil = try await RawHTTP.post(port: port, body: body, headers: ["Origin": "http://evil.example"])
            #expect(evil.status == 403)
            let nullOrigin = try await RawHTTP.post(port: port, body: body, headers: ["Origin": "null"])
            #expect(nullOrigin.status == 403)
            let crossSite = try await RawHTTP.post(port: port, body: body, headers: ["Sec-Fetch-Site": "cross-site"])
            #expect(crossSite.status == 403)
            let own = try await RawHTTP.post(port: port, body: body, headers: ["Origin": "http://127.0.0.1:\(port)"])
            #expect(own.status == 202)
        }
    }

    @Test func tokenIsRequiredWhenSet() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site, configure: { $0.token = "s3cret" }) { port async throws in
            let body = #"{"data":"x"}"#
            #expect(try await RawHTTP.post(port: port, body: body).status == 401)
            #expect(
                try await RawHTTP.post(port: port, body: body, headers: ["Authorization": "Bearer nope"]).status == 401
            )
            #expect(
                try await RawHTTP.post(port: port, body: body, headers: ["Authorization": "Bearer s3cret"]).status
                    == 202
            )
        }
    }

    @Test func cliPublishesAndReportsServerErrors() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let url = "http://127.0.0.1:\(port)"
            let stream = try await SSEClient.connect(port: port, path: "/__beacon/events?channel=chat&channel=default")
            _ = try await stream.next { $0.name == "hello" }

            let sent = try await BeaconProcess.run([
                "publish", "--url", url, "--channel", "chat", "--event", "note", "hi there",
            ])
            #expect(sent.status == 0, "\(sent.stderr)")
            let note = try await stream.next { $0.name == "note" }
            #expect(note.data == "hi there")
            #expect(sent.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == note.id)

            let fragment = try await BeaconProcess.run([
                "publish", "--url", url, "--fragment", "#clock", "--swap", "outer", "<b>12:00</b>",
            ])
            #expect(fragment.status == 0, "\(fragment.stderr)")
            let patch = try await stream.next { $0.name == "patch" }
            let data = try JSONSerialization.jsonObject(with: Data(patch.data.utf8)) as? [String: String]
            #expect(data == ["selector": "#clock", "html": "<b>12:00</b>", "swap": "outer"])

            let refused = try await BeaconProcess.run(["publish", "--url", url, "--channel", "bad name", "x"])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("HTTP 400"))
            #expect(refused.stderr.contains("channel"))
            #expect(refused.stderr.split(separator: "\n").count == 1)

            let unreachable = try await BeaconProcess.run(["publish", "--url", "http://127.0.0.1:1", "x"])
            #expect(unreachable.status != 0)
            #expect(unreachable.stderr.contains("cannot reach Beacon at http://127.0.0.1:1 (connection refused)"))
            #expect(unreachable.stderr.split(separator: "\n").count == 1)
        }
    }

    @Test func cliReadsStandardInputAndSendsTheToken() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site, configure: { $0.token = "t0k" }) { port in
            let stream = try await SSEClient.connect(port: port)
            _ = try await stream.next { $0.name == "hello" }
            let url = "http://127.0.0.1:\(port)"
            let denied = try await BeaconProcess.run(["publish", "--url", url, "x"])
            #expect(denied.status != 0)
            #expect(denied.stderr.contains("401"))
            let piped = try BeaconProcess(
                ["publish", "--url", url, "--token", "t0k", "-"],
                stdin: "line one\nline two\n"
            )
            #expect(try await piped.waitForExit().status == 0)
            let event = try await stream.next { $0.name == "message" }
            #expect(event.data == "line one\nline two\n")
        }
    }
}
