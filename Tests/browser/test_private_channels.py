"""Private channels (#18): tokens minted by PyJWT (a library no one here wrote) and by `beacon token`,
presented as `Authorization: Bearer` or the `beacon_token` cookie; 401/403 with their Bearer
challenges and JSON bodies; publish grants; status; two users in Chromium; a token that expires
mid-stream; two instances sharing Redis; and hostile requests with every channel private."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import time
import urllib.parse

import jwt
import pytest
from conftest import _beacon_bin, beacon_server
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from helpers import WAIT, StreamRecorder, wait_until

SECRET = "s3cret-" * 10  # 70 bytes: long enough for HS512 (RFC 7518 §3.2)
ADMIN = "admin-token-for-tests"
# Every channel under user. is private; leeway 0 so that expiry is exact.
PRIVATE = ["--private", "user.**", "--jwt-key", SECRET, "--jwt-leeway", "0"]


def mint(subscribe=(), publish=(), ttl: float = 600, key=SECRET, algorithm="HS256", **claims) -> str:
    payload = {"exp": int(time.time() + ttl), "beacon": {"subscribe": list(subscribe), "publish": list(publish)},
               **claims}
    return jwt.encode(payload, key, algorithm=algorithm)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def call(server, method: str, path: str, headers=None, body=None):
    """One request; returns (status, headers as a lower-cased dict, body text)."""
    parts = urllib.parse.urlsplit(server.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        # A stream that opened: its headers are enough.
        text = "" if response.getheader("Content-Type", "").startswith("text/event-stream") else response.read().decode()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text
    finally:
        conn.close()


def stream_status(server, channels, headers=None):
    query = "&".join(f"channel={c}" for c in channels)
    return call(server, "GET", f"/__beacon/events?{query}", headers)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def publish(server, channel: str, data: str, token: str = ADMIN):
    return call(server, "POST", "/__beacon/publish", {"Content-Type": "application/json", **bearer(token)},
                json.dumps({"channel": channel, "data": data}))


def assert_refused(answer, status: int, error: str, server):
    code, headers, body = answer
    assert code == status, f"expected {status}, got {code} {body}\n{server.log()}"
    challenge = headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer"), challenge
    if error:
        assert f'error="{error}"' in challenge, challenge
    parsed = json.loads(body)
    assert parsed["error"]["code"] and parsed["error"]["message"], parsed


def test_each_algorithm_takes_pyjwt_tokens_signed_with_its_key(tmp_path):
    generate = {
        "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate,
    }
    for algorithm in ("HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"):
        key_file = tmp_path / f"{algorithm}.key"
        if algorithm.startswith("HS"):
            key_file.write_text(SECRET + "\n")
            signing, stranger = SECRET, "another-" * 10
        else:
            signing, stranger = generate[algorithm](), generate[algorithm]()
            key_file.write_bytes(signing.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        args = ["--private", "user.**", "--jwt-key-file", str(key_file), "--jwt-alg", algorithm]
        with beacon_server(tmp_path, f"site-{algorithm}", args, site_dir=False, cwd=tmp_path) as server:
            good = mint(["user.1.*"], key=signing, algorithm=algorithm)
            assert stream_status(server, ["user.1.inbox"], bearer(good))[0] == 200, algorithm
            assert_refused(stream_status(server, ["user.2.inbox"], bearer(good)), 403, "insufficient_scope", server)
            forged = mint(["user.1.*"], key=stranger, algorithm=algorithm)
            assert_refused(stream_status(server, ["user.1.inbox"], bearer(forged)), 401, "invalid_token", server)


def test_tokens_that_must_not_pass(tmp_path):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "rsa.pem").write_bytes(public_pem)
    issuer = ["--jwt-issuer", "auth.example", "--jwt-audience", "beacon"]
    with beacon_server(tmp_path, "hs", PRIVATE + issuer, site_dir=False, cwd=tmp_path) as server:
        claims = {"iss": "auth.example", "aud": "beacon"}
        assert stream_status(server, ["user.1.x"], bearer(mint(["user.1.*"], **claims)))[0] == 200
        good = mint(["user.1.*"], **claims)
        header, payload, signature = good.split(".")
        greedy = json.loads(base64.urlsafe_b64decode(payload + "=="))
        greedy["beacon"]["subscribe"] = ["**"]
        unsigned = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + payload + "."
        cases = {
            "expired": mint(["user.1.*"], ttl=-5, **claims),
            "not valid yet": mint(["user.1.*"], nbf=int(time.time()) + 300, **claims),
            "wrong issuer": mint(["user.1.*"], iss="evil.example", aud="beacon"),
            "wrong audience": mint(["user.1.*"], iss="auth.example", aud="someone-else"),
            "no issuer nor audience": mint(["user.1.*"]),
            "tampered payload": ".".join([header, b64(json.dumps(greedy).encode()), signature]),
            "wrong key": mint(["user.1.*"], key="wrong-key-" * 7, **claims),
            "alg none": unsigned,
            "alg none via PyJWT": jwt.encode({"exp": int(time.time()) + 600, "beacon": {"subscribe": ["**"]}, **claims},
                                             None, algorithm="none"),
            "missing exp": jwt.encode({"beacon": {"subscribe": ["user.1.*"]}, **claims}, SECRET, algorithm="HS256"),
            "not a JWT": "not-a-jwt",
        }
        for name, token in cases.items():
            answer = stream_status(server, ["user.1.x"], bearer(token))
            assert answer[0] == 401, f"{name}: {answer}"
            assert_refused(answer, 401, "invalid_token", server)
        # No token at all: 401 with a challenge, no error code (RFC 6750 §3.1).
        assert_refused(stream_status(server, ["user.1.x"]), 401, None, server)

    # Algorithm confusion: an HS256 token whose secret is the RS256 public key (PyJWT refuses to
    # make one, so it is signed here by hand).
    with beacon_server(tmp_path, "rs", ["--private", "user.**", "--jwt-key-file", str(tmp_path / "rsa.pem"),
                                        "--jwt-alg", "RS256"], site_dir=False, cwd=tmp_path) as server:
        assert stream_status(server, ["user.1.x"], bearer(mint(["user.1.*"], key=rsa_key, algorithm="RS256")))[0] == 200
        signed = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(
            json.dumps({"exp": int(time.time()) + 600, "beacon": {"subscribe": ["**"]}}).encode())
        forged = signed + "." + b64(hmac.new(public_pem, signed.encode(), hashlib.sha256).digest())
        assert_refused(stream_status(server, ["user.1.x"], bearer(forged)), 401, "invalid_token", server)


def test_a_token_in_the_url_is_refused_and_never_logged(tmp_path):
    with beacon_server(tmp_path, "url", PRIVATE + ["--token", ADMIN], site_dir=False, cwd=tmp_path) as server:
        token = mint(["user.1.*"])
        for path in (f"/__beacon/events?channel=user.1.x&access_token={token}",
                     f"/__beacon/events?channel=user.1.x&authorization=Bearer%20{token}",
                     f"/__beacon/status?token={token}", f"/__beacon/publish?jwt={token}"):
            status, _, body = call(server, "GET", path)
            assert status == 400 and json.loads(body)["error"]["code"] == "token_in_url", (path, status, body)
            assert token not in body
        assert token not in server.log()


def test_the_header_wins_over_the_cookie(tmp_path):
    with beacon_server(tmp_path, "both", PRIVATE, site_dir=False, cwd=tmp_path) as server:
        one, two = mint(["user.1.*"]), mint(["user.2.*"])
        both = {**bearer(one), "Cookie": f"theme=dark; beacon_token={two}"}
        assert stream_status(server, ["user.1.x"], both)[0] == 200
        assert_refused(stream_status(server, ["user.2.x"], both), 403, "insufficient_scope", server)
        assert stream_status(server, ["user.2.x"], {"Cookie": f"beacon_token={two}"})[0] == 200
        # --jwt-cookie names another cookie.
    with beacon_server(tmp_path, "named", PRIVATE + ["--jwt-cookie", "session_jwt"], site_dir=False,
                       cwd=tmp_path) as server:
        assert stream_status(server, ["user.2.x"], {"Cookie": f"session_jwt={mint(['user.2.*'])}"})[0] == 200
        assert stream_status(server, ["user.2.x"], {"Cookie": f"beacon_token={mint(['user.2.*'])}"})[0] == 401


def test_beacon_token_mints_what_pyjwt_and_the_server_accept(tmp_path):
    env = {**os.environ, "BEACON_JWT_KEY": SECRET}
    minted = subprocess.run(
        [str(_beacon_bin()), "token", "--subscribe", "user.1.*", "news", "--publish", "chat", "--ttl", "1h",
         "--sub", "1", "--jwt-issuer", "auth.example", "--jwt-audience", "beacon"],
        env=env, capture_output=True, text=True, timeout=30)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="beacon", issuer="auth.example")
    assert claims["sub"] == "1"
    assert claims["beacon"] == {"subscribe": ["user.1.*", "news"], "publish": ["chat"]}
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    args = PRIVATE + ["--jwt-issuer", "auth.example", "--jwt-audience", "beacon"]
    with beacon_server(tmp_path, "cli", args, site_dir=False, cwd=tmp_path) as server:
        assert stream_status(server, ["user.1.x"], bearer(token))[0] == 200
        assert publish(server, "chat", "hi", token)[0] == 202

    # Asymmetric: the private key signs, the server holds only the public one.
    private = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "es.key").write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    minted = subprocess.run(
        [str(_beacon_bin()), "token", "--subscribe", "user.**", "--jwt-private-key", str(tmp_path / "es.key"),
         "--jwt-alg", "ES256", "--ttl", "90s"], capture_output=True, text=True, timeout=30)
    assert minted.returncode == 0, minted.stderr
    claims = jwt.decode(minted.stdout.strip(), public_pem, algorithms=["ES256"])
    assert claims["exp"] - claims["iat"] == 90

    # Refusals say what to do, on one line.
    for args, message in ((["--subscribe", "a"], "give a key"), (["--jwt-key", "short", "--subscribe", "a"], "32 bytes"),
                          (["--jwt-key", SECRET], "grant something"),
                          (["--jwt-key", SECRET, "--subscribe", "a b"], "invalid"),
                          (["--jwt-key", SECRET, "--subscribe", "a", "--ttl", "soon"], "--ttl")):
        failed = subprocess.run([str(_beacon_bin()), "token", *args], capture_output=True, text=True, timeout=30,
                                env={k: v for k, v in os.environ.items() if k != "BEACON_JWT_KEY"})
        assert failed.returncode != 0 and message in failed.stderr, (args, failed.stderr)


def test_publishing_needs_a_matching_grant_and_a_refusal_publishes_nothing(tmp_path):
    with beacon_server(tmp_path, "pub", PRIVATE + ["--token", ADMIN], site_dir=False, cwd=tmp_path) as server:
        reader = StreamRecorder(server, "/__beacon/events?channel=chat&channel=user.1.inbox",
                                bearer(mint(["user.1.*"])))
        try:
            reader.wait_for(lambda events: any(name == "hello" for _, name, _ in events), "hello")
            writer = mint(publish=["chat"])
            assert publish(server, "chat", "allowed", writer)[0] == 202
            assert_refused(publish(server, "user.1.inbox", "outside the grant", writer), 403, "insufficient_scope",
                           server)
            assert_refused(publish(server, "chat", "a reader", mint(["**"])), 403, "insufficient_scope", server)
            assert_refused(publish(server, "chat", "no token", ""), 401, None, server)
            assert_refused(publish(server, "chat", "junk", "junk"), 401, "invalid_token", server)
            assert publish(server, "user.1.inbox", "by the admin token", ADMIN)[0] == 202
            reader.wait_for(lambda events: any(data == "by the admin token" for _, _, data in events),
                            "the admin token's event")
            data = [data for _, name, data in reader.events if name == "message"]
            assert data == ["allowed", "by the admin token"], reader.describe()
            status = json.loads(call(server, "GET", "/__beacon/status", bearer(ADMIN))[2])
            assert status["eventsPublished"] == 2, status
        finally:
            reader.close()


def test_status_shows_private_counts_only_to_a_granting_token(tmp_path):
    with beacon_server(tmp_path, "status", PRIVATE, site_dir=False, cwd=tmp_path) as server:
        streams = [StreamRecorder(server, "/__beacon/events?channel=user.1.inbox", bearer(mint(["user.1.*"]))),
                   StreamRecorder(server, "/__beacon/events?channel=news")]
        try:
            def counts(headers=None):
                status, _, body = call(server, "GET", "/__beacon/status", headers)
                assert status == 200, body
                return json.loads(body)["clientsPerChannel"]

            deadline = time.monotonic() + WAIT
            while counts(bearer(mint(["user.**"]))) != {"news": 1, "user.1.inbox": 1} and time.monotonic() < deadline:
                time.sleep(0.05)
            assert counts(bearer(mint(["user.**"]))) == {"news": 1, "user.1.inbox": 1}
            assert counts() == {"news": 1}
            assert counts(bearer(mint(["user.2.*"]))) == {"news": 1}
            assert counts(bearer("junk")) == {"news": 1}
            assert counts({"Cookie": f"beacon_token={mint(['user.1.*'])}"}) == {"news": 1, "user.1.inbox": 1}
        finally:
            for stream in streams:
                stream.close()


PAGE = """<!doctype html><title>inbox</title><ul id="events"></ul>
<script>
window.received = []; window.states = []; window.lastId = null;
window.listen = (channels, lastId) => {
  if (window.source) window.source.close();
  const query = channels.map(c => 'channel=' + encodeURIComponent(c)).join('&')
    + (lastId ? '&lastEventId=' + encodeURIComponent(lastId) : '');
  const source = new EventSource('/__beacon/events?' + query);
  source.onopen = () => window.states.push('open');
  source.onerror = () => window.states.push(source.readyState === EventSource.CLOSED ? 'closed' : 'retrying');
  source.onmessage = (event) => { window.received.push(event.data); window.lastId = event.lastEventId; };
  window.source = source;
};
</script>"""


def open_inbox(driver, server, token, channels):
    driver.get(server.url("inbox.html"))
    if token:
        driver.add_cookie({"name": "beacon_token", "value": token, "path": "/"})
    driver.execute_script("window.listen(arguments[0], null);", channels)
    wait_until(driver, server, "return window.states.length > 0;", f"the stream of {channels} opened or failed")


def received(driver) -> list:
    return driver.execute_script("return window.received;")


def test_two_users_in_chromium_each_see_only_their_events(tmp_path, driver, second_driver):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "inbox.html").write_text(PAGE)
    args = [str(tmp_path / "pages"), *PRIVATE, "--token", ADMIN]
    with beacon_server(tmp_path, "users", args, site_dir=False, cwd=tmp_path) as server:
        one, two = driver, second_driver
        open_inbox(one, server, mint(["user.1.*"]), ["user.1.inbox", "news"])
        open_inbox(two, server, mint(["user.2.*"]), ["user.2.inbox", "news"])
        for browser in (one, two):
            assert browser.execute_script("return window.states;") == ["open"]

        for channel, data in (("user.1.inbox", "for 1"), ("user.2.inbox", "for 2"), ("news", "news 1")):
            assert publish(server, channel, data)[0] == 202
        wait_until(one, server, lambda d: received(d) == ["for 1", "news 1"], "user 1 has their events")
        wait_until(two, server, lambda d: received(d) == ["for 2", "news 1"], "user 2 has theirs")

        # Both leave; events arrive meanwhile; each comes back with its Last-Event-ID.
        for browser in (one, two):
            browser.execute_script("window.source.close();")
        for channel, data in (("user.2.inbox", "missed by 2"), ("user.1.inbox", "missed by 1"), ("news", "news 2")):
            assert publish(server, channel, data)[0] == 202
        for browser in (one, two):
            browser.execute_script("window.listen(arguments[0], window.lastId);",
                                   ["user.1.inbox" if browser is one else "user.2.inbox", "news"])
        wait_until(one, server, lambda d: received(d) == ["for 1", "news 1", "missed by 1", "news 2"],
                   "user 1 replays their missed events only")
        wait_until(two, server, lambda d: received(d) == ["for 2", "news 1", "missed by 2", "news 2"],
                   "user 2 replays theirs only")

        # A window without a token: the public channel streams, the private one is refused.
        one.delete_all_cookies()
        one.execute_script("window.received = []; window.states = []; window.listen(['news'], null);")
        wait_until(one, server, "return window.states.includes('open');", "the public stream opens without a token")
        one.execute_script("window.others = new EventSource('/__beacon/events?channel=user.1.inbox');"
                           "window.others.onerror = () => { window.othersState = window.others.readyState; };"
                           "window.others.onmessage = (e) => window.received.push('leak: ' + e.data);")
        wait_until(one, server, "return window.othersState === EventSource.CLOSED;",
                   "the private stream is refused without a token")
        assert publish(server, "user.1.inbox", "private")[0] == 202
        assert publish(server, "news", "news 3")[0] == 202
        wait_until(one, server, lambda d: received(d) == ["news 3"], "the tokenless window gets the public event only")


def test_a_stream_ends_when_its_token_expires_and_a_fresh_token_replays_what_was_missed(tmp_path, driver):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "inbox.html").write_text(PAGE)
    args = [str(tmp_path / "pages"), *PRIVATE, "--token", ADMIN]
    with beacon_server(tmp_path, "expiry", args, site_dir=False, cwd=tmp_path) as server:
        lifetime = 3
        short = mint(["user.1.*"], ttl=lifetime)
        expires = jwt.decode(short, SECRET, algorithms=["HS256"])["exp"]
        open_inbox(driver, server, short, ["user.1.inbox"])
        assert publish(server, "user.1.inbox", "before expiry")[0] == 202
        wait_until(driver, server, lambda d: received(d) == ["before expiry"], "the first event")

        # The stream ends at exp; EventSource retries with the same cookie and gets 401.
        wait_until(driver, server, "return window.states.includes('closed');",
                   "the stream ended and the expired token was refused", timeout=lifetime + WAIT)
        assert time.time() >= expires - 0.5, "the stream ended before its token expired"
        for data in ("while away 1", "while away 2"):
            assert publish(server, "user.1.inbox", data)[0] == 202

        driver.add_cookie({"name": "beacon_token", "value": mint(["user.1.*"]), "path": "/"})
        driver.execute_script("window.listen(['user.1.inbox'], window.lastId);")
        assert publish(server, "user.1.inbox", "after return")[0] == 202
        wait_until(driver, server,
                   lambda d: received(d) == ["before expiry", "while away 1", "while away 2", "after return"],
                   "every event, once, after the return with a fresh token")


def test_a_users_stream_on_one_instance_gets_only_their_events_published_on_another(tmp_path, redis_url):
    args = PRIVATE + ["--token", ADMIN, "--redis", redis_url]
    with beacon_server(tmp_path, "a", args, site_dir=False, cwd=tmp_path) as a, \
            beacon_server(tmp_path, "b", args, site_dir=False, cwd=tmp_path) as b:
        stream = StreamRecorder(b, "/__beacon/events?channel=user.1.inbox&channel=news",
                                {"Cookie": f"beacon_token={mint(['user.1.*'])}"})
        try:
            stream.wait_for(lambda events: any(name == "hello" for _, name, _ in events), "hello")
            for channel, data in (("user.2.inbox", "for 2"), ("user.1.inbox", "for 1"), ("news", "news")):
                assert publish(a, channel, data, mint(publish=["**"]))[0] == 202
            stream.wait_for(lambda events: any(data == "news" for _, _, data in events), "the last event")
            assert [data for _, name, data in stream.events if name == "message"] == ["for 1", "news"], \
                stream.describe()
            # B refuses user 2's channel to user 1's token as A would.
            assert_refused(stream_status(b, ["user.2.inbox"], bearer(mint(["user.1.*"]))), 403,
                           "insufficient_scope", b)
        finally:
            stream.close()


def test_hostile_stream_and_publish_requests_with_every_channel_private(tmp_path):
    with beacon_server(tmp_path, "hostile", ["--private", "**", "--jwt-key", SECRET], site_dir=False,
                       cwd=tmp_path) as server:
        huge = "a" * 8000
        forged_header = b64(b'{"alg":"HS256","kid":"../../etc/passwd"}')
        tokens = ["", " ", "Bearer", huge, "a.b.c", "..", "a..", forged_header + "..",
                  forged_header + "." + b64(b"[]") + ".", forged_header + "." + b64(b'{"exp":"soon"}') + ".x",
                  b64(b'{"alg":"HS256"}') + "." + b64(b'{"exp":1e400,"beacon":{"subscribe":"**"}}') + ".x",
                  mint(["**"], ttl=-100), mint(["**"], key="another-key-" * 6), "\u00e9".encode().decode("latin-1")]
        requests = []
        for token in tokens:
            for headers in ({"Authorization": f"Bearer {token}"}, {"Authorization": token},
                            {"Cookie": f"beacon_token={token}"}, {"Cookie": f'beacon_token="{token}'}):
                requests.append(("GET", "/__beacon/events?channel=a.b", headers, None))
                requests.append(("GET", "/__beacon/events", headers, None))
                requests.append(("POST", "/__beacon/publish", {**headers, "Content-Type": "application/json"},
                                 json.dumps({"channel": "a", "data": "x"})))
                requests.append(("GET", "/__beacon/status", headers, None))
        for method, path, headers, body in requests:
            try:
                status, _, text = call(server, method, path, headers, body)
            except (http.client.HTTPException, OSError):
                continue  # refused at the connection (a header NIO will not read): no answer, no leak
            assert status < 500, (method, path, headers, status, text)
            if path.startswith("/__beacon/events") or path.startswith("/__beacon/publish"):
                assert status in (400, 401, 403), (method, path, headers, status, text)
            else:
                assert json.loads(text)["clientsPerChannel"] == {}
        assert call(server, "GET", "/__beacon/status")[0] == 200, server.log()
