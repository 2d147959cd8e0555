#!/bin/bash
# Runs inside a fresh Debian root (make dist-check): no Swift toolchain, nothing but minbase and the
# .deb. The installed beacon must print its version, write a site, serve a page with the live
# client and push a published event down an open stream. Bounded: every wait has a timeout.
set -euo pipefail
beacon --version
rm -rf /tmp/site && beacon init /tmp/site
beacon serve /tmp/site --port 0 > /tmp/serve.out 2> /tmp/serve.err &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's#^Serving .* at http://127.0.0.1:\([0-9]*\)/.*#\1#p' /tmp/serve.out)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "dist-check: beacon serve printed no Serving line"; cat /tmp/serve.err; exit 1; }

exec 3<>/dev/tcp/127.0.0.1/$port
printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
page=$(timeout 10 cat <&3)
exec 3>&-
grep -q '^HTTP/1.1 200 OK' <<<"$page" || { echo "dist-check: GET / did not answer 200"; exit 1; }
grep -q '<script src="/__beacon/client.js"></script>' <<<"$page" || { echo "dist-check: no live client in the page"; exit 1; }

exec 4<>/dev/tcp/127.0.0.1/$port
printf 'GET /__beacon/events?channel=dist HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&4
timeout 10 grep -q -m1 'event: hello' <&4 || { echo "dist-check: the stream did not open"; exit 1; }
beacon publish --url "http://127.0.0.1:$port" --channel dist 'installed from the .deb'
timeout 10 grep -q -m1 'data: installed from the .deb' <&4 || { echo "dist-check: the event did not arrive"; exit 1; }
echo "dist-check: passed (version, init, serve, page, publish, event)"
