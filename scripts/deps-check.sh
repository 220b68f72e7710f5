#!/usr/bin/env bash
# The crate graph is the architecture: the core depends on no IO crate, and inbound adapters
# (http, gateway) depend on the core, never on outbound adapters or their IO crates.
set -euo pipefail

io_crates='diesel|diesel-async|diesel_migrations|libsqlite3-sys|tokio-postgres|redis|rust-s3|webrtc|rtc|rtc-[a-z]+|argon2|jsonwebtoken|reqwest|hyper|actix-web|actix-ws|actix-rt|actix-http|awc|tokio|mio|deadpool|config'
outbound='ecto-sql|ecto-memory|ecto-redis|ecto-auth|ecto-central|ecto-localfs|ecto-s3|ecto-unfurl|ecto-voice|ecto-server'
inbound_forbidden="diesel|diesel-async|libsqlite3-sys|tokio-postgres|redis|rust-s3|webrtc|rtc|rtc-[a-z]+|argon2|jsonwebtoken|reqwest|deadpool|${outbound}"

status=0
check() { # crate, forbidden regex
  local crate=$1 forbidden=$2 found
  if ! cargo metadata --no-deps --format-version 1 | grep -q "\"name\":\"$crate\""; then
    return 0
  fi
  found=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}' 2>/dev/null \
    | awk '{print $1}' | sort -u | grep -Ex "($forbidden)" || true)
  if [ -n "$found" ]; then
    echo "deps-check: $crate must not depend on: $(echo "$found" | tr '\n' ' ')"
    status=1
  else
    echo "deps-check: $crate ok"
  fi
}

check ecto-core "$io_crates|$outbound|ecto-http|ecto-gateway"
check ecto-http "$inbound_forbidden"
check ecto-gateway "$inbound_forbidden|ecto-http"
# The SFU is an outbound adapter like the others: it knows the core, not its neighbours.
check ecto-voice "ecto-sql|ecto-memory|ecto-redis|ecto-auth|ecto-central|ecto-localfs|ecto-s3|ecto-unfurl|ecto-server|ecto-http|ecto-gateway|diesel|redis|actix-web"
exit $status
