#!/usr/bin/env bash
# The API server's transport, against the real binary: HTTPS when api.tls_cert/api.tls_key are
# set (and a clear error when they are wrong), gzip for clients that accept it, a body over
# api.max_body_bytes refused from its Content-Length alone, the UI's files with ETag/304 and a
# strict Content-Security-Policy, and a clean stop on SIGTERM.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GUST=${GUST_BIN:-$ROOT/bin/gust}
TMP=$(mktemp -d)
PID=""
pass=0 fail=0
ok() { echo "  ok   $1"; pass=$((pass + 1)); }
bad() { echo "  FAIL $1"; [ -n "${2:-}" ] && echo "       $2"; fail=$((fail + 1)); }
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
command -v openssl >/dev/null || { echo "api_server: openssl is needed"; exit 1; }
command -v curl >/dev/null || { echo "api_server: curl is needed"; exit 1; }

# start LOG ARGS...: run gust standalone with ARGS, wait for its banner, set PORT
start() {
  local log=$1; shift
  GUST_HOME=$TMP/home "$GUST" --api.port=0 --core.dags_folder="$TMP/dags" "$@" standalone >"$log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do grep -q "is up" "$log" && break; kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  PORT=$(sed -nE 's|.*api: +https?://[^:]+:([0-9]+).*|\1|p' "$log" | head -1)
}
stop() { kill "$PID" 2>/dev/null; wait "$PID"; local rc=$?; PID=""; return $rc; }
mkdir -p "$TMP/dags"

echo "== HTTPS"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 1 \
  -subj "/CN=127.0.0.1" >/dev/null 2>&1 || { echo "api_server: openssl cannot make a certificate"; exit 1; }
start "$TMP/tls.log" --api.tls_cert="$TMP/cert.pem" --api.tls_key="$TMP/key.pem"
grep -q "api: *https://127.0.0.1:" "$TMP/tls.log" && ok "tls: the banner says https" || bad "tls: banner" "$(tail -5 "$TMP/tls.log")"
out=$(curl -s --cacert "$TMP/cert.pem" "https://127.0.0.1:$PORT/health")
[ "$out" = '{"status":"ok"}' ] && ok "tls: /health answers over HTTPS, verified against the certificate" || bad "tls: /health over HTTPS" "$out"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")
[ "$code" != 200 ] && ok "tls: plain HTTP on the TLS port is not served ($code)" || bad "tls: plain HTTP refused" "$code"
stop && ok "tls: stops with exit 0" || bad "tls: stop"

echo "== TLS settings that cannot work"
GUST_HOME=$TMP/home timeout 10 "$GUST" --api.port=0 --core.dags_folder="$TMP/dags" --api.tls_cert="$TMP/cert.pem" standalone >"$TMP/half.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "api.tls_cert and api.tls_key must be set together" "$TMP/half.log" \
  && ok "tls: a certificate without a key is refused, naming both settings" || bad "tls: half settings" "rc=$rc $(tail -2 "$TMP/half.log")"
GUST_HOME=$TMP/home timeout 10 "$GUST" --api.port=0 --core.dags_folder="$TMP/dags" --api.tls_cert="$TMP/nope.pem" --api.tls_key="$TMP/key.pem" standalone >"$TMP/missing.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "nope.pem" "$TMP/missing.log" && ok "tls: a missing certificate file is named" || bad "tls: missing file" "rc=$rc $(tail -2 "$TMP/missing.log")"

echo "== HTTP: gzip, body limit, UI files"
start "$TMP/http.log" --api.max_body_bytes=65536
PASS=$(cat "$TMP/home/standalone_admin_password.txt" 2>/dev/null)
for _ in $(seq 1 50); do [ -n "$PASS" ] && break; sleep 0.2; PASS=$(cat "$TMP/home/standalone_admin_password.txt" 2>/dev/null); done
TOKEN=$(curl -s -X POST -H 'Content-Type: application/json' -d "{\"username\":\"admin\",\"password\":\"$PASS\"}" \
        "http://127.0.0.1:$PORT/auth/token" | sed -nE 's/.*"access_token":"([^"]+)".*/\1/p')
[ -n "$TOKEN" ] && ok "the admin's printed password gets a token" || bad "admin token" "$PASS"
for i in $(seq 1 40); do
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"key\":\"var_$i\",\"value\":\"a value long enough to make the list worth compressing $i\"}" "http://127.0.0.1:$PORT/api/v2/variables"
done
curl -s -D "$TMP/h1" -o "$TMP/b1" -H "Authorization: Bearer $TOKEN" -H 'Accept-Encoding: gzip' "http://127.0.0.1:$PORT/api/v2/variables?limit=100"
curl -s -D "$TMP/h2" -o "$TMP/b2" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v2/variables?limit=100"
if grep -qi '^content-encoding: gzip' "$TMP/h1" && gunzip -c "$TMP/b1" | cmp -s - "$TMP/b2"; then
  ok "gzip: a large answer is gzipped for a client that accepts it, and unzips to the plain answer"
else bad "gzip" "$(cat "$TMP/h1")"; fi
grep -qi '^content-encoding' "$TMP/h2" && bad "gzip: not for a client that did not ask" || ok "gzip: not for a client that did not ask"
[ "$(wc -c <"$TMP/b1")" -lt "$(wc -c <"$TMP/b2")" ] && ok "gzip: smaller ($(wc -c <"$TMP/b1") < $(wc -c <"$TMP/b2") bytes)" || bad "gzip: smaller"

head -c 200000 /dev/zero | tr '\0' 'x' >"$TMP/big"
code=$(curl -s -o "$TMP/b3" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
       --data-binary @"$TMP/big" "http://127.0.0.1:$PORT/api/v2/variables")
[ "$code" = 413 ] && grep -q "api.max_body_bytes (65536 bytes)" "$TMP/b3" && ok "a body over api.max_body_bytes: 413 naming the setting" || bad "413" "$code $(cat "$TMP/b3")"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")
[ "$code" = 200 ] && ok "still serving after the 413" || bad "serving after 413" "$code"
code=$(curl -s -o "$TMP/b5" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
       -H 'Content-Length: 99999999999' --data-binary '{' "http://127.0.0.1:$PORT/api/v2/variables")
[ "$code" = 413 ] && ok "a Content-Length far over the limit: 413 before the body is read" || bad "early 413" "$code $(cat "$TMP/b5")"

curl -s -D "$TMP/h4" -o "$TMP/index.html" "http://127.0.0.1:$PORT/"
etag=$(sed -nE 's/^[Ee][Tt]ag: *(.*)\r$/\1/p' "$TMP/h4")
grep -q '^HTTP/1.1 200' "$TMP/h4" && grep -qi '<html' "$TMP/index.html" && ok "the UI's index.html at /" || bad "/ serves the UI" "$(head -3 "$TMP/h4")"
grep -qi "^content-security-policy: default-src 'self'" "$TMP/h4" && ok "the UI comes with a strict Content-Security-Policy" || bad "CSP"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "http://127.0.0.1:$PORT/")
[ -n "$etag" ] && [ "$code" = 304 ] && ok "the UI's ETag: a repeat visit gets 304" || bad "304" "etag=$etag code=$code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ui/..%2f..%2fetc%2fpasswd")
[ "$code" = 404 ] && ok "no path out of the embedded UI files (404)" || bad "ui traversal" "$code"
stop && ok "stops with exit 0" || bad "stop"

echo "api_server: $pass passed, $fail failed"
[ $fail -eq 0 ]
