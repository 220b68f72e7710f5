#!/usr/bin/env bash
# The crate graph is the architecture: the core depends on no IO crate, inbound adapters
# (http, gateway) depend on the core, never on outbound adapters or their IO crates, and an
# outbound adapter depends on the core, never on another adapter. Only the composition root
# (ecto-server) and the tests know every crate.
# Fails when a rule is broken, and when a crate it checks is missing or `cargo tree` fails:
# a check that cannot run is not a pass.
set -euo pipefail

io_crates='diesel|diesel-async|diesel_migrations|libsqlite3-sys|tokio-postgres|redis|rust-s3|webrtc|rtc|rtc-[a-z]+|argon2|jsonwebtoken|reqwest|hyper|actix-web|actix-ws|actix-rt|actix-http|awc|tokio|mio|deadpool|config'
outbound_list='ecto-sql ecto-memory ecto-redis ecto-auth ecto-central ecto-localfs ecto-s3 ecto-unfurl ecto-voice'
outbound="$(echo "$outbound_list" | tr ' ' '|')|ecto-server"
inbound_forbidden="diesel|diesel-async|libsqlite3-sys|tokio-postgres|redis|rust-s3|webrtc|rtc|rtc-[a-z]+|argon2|jsonwebtoken|reqwest|deadpool|${outbound}"

members=$(cargo metadata --no-deps --format-version 1) || { echo "deps-check: cargo metadata failed"; exit 1; }
status=0
check() { # crate, forbidden regex
  local crate=$1 forbidden=$2 tree found
  if ! grep -q "\"name\":\"$crate\"" <<<"$members"; then
    echo "deps-check: $crate is not a workspace crate (renamed? update scripts/deps-check.sh)"
    status=1
    return
  fi
  if ! tree=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}'); then
    echo "deps-check: cargo tree -p $crate failed"
    status=1
    return
  fi
  # The crate itself is the first line; what follows are its dependencies.
  found=$(tail -n +2 <<<"$tree" | awk '{print $1}' | sort -u | grep -Ex "($forbidden)" || true)
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
# The link card renderer: a pure function of its inputs, used by ecto-http.
check ecto-ogimage "$io_crates|ecto-core|$outbound|ecto-http|ecto-gateway"
for crate in $outbound_list; do
  check "$crate" "${outbound}|ecto-http|ecto-gateway"
done

# The minimum Rust version stated in Cargo.toml (`rust-version`, which clippy's
# incompatible_msrv lint holds our own code to) must be at least every locked dependency's
# that this platform builds.
if ! used=$(cargo tree --workspace -e normal,build,dev --prefix none --format '{p}' | awk '{print $1" "$2}' | sort -u) ||
   ! meta=$(cargo metadata --format-version 1); then
  echo "deps-check: cargo tree / cargo metadata failed"
  exit 1
fi
msrv=$(USED="$used" python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
used = {tuple(l.split()) for l in os.environ["USED"].splitlines()}
ver = lambda v: tuple((list(map(int, v.split("."))) + [0, 0])[:3])
stated = {p["name"]: p.get("rust_version") for p in meta["packages"] if p["id"] in meta["workspace_members"]}["ecto-server"]
need = max(((ver(p["rust_version"]), p["name"] + " " + p["version"]) for p in meta["packages"]
            if p.get("rust_version") and (p["name"], "v" + p["version"]) in used), default=((0,), "none"))
ok = stated is not None and ver(stated) >= need[0]
print(("ok " if ok else "bad ") + str(stated) + " " + ".".join(map(str, need[0])) + " (" + need[1] + ")")
' <<<"$meta")
case $msrv in
  ok*) echo "deps-check: rust-version ${msrv#ok } ok" ;;
  *) echo "deps-check: rust-version ${msrv#bad } is below what the lockfile needs: raise rust-version in Cargo.toml"; status=1 ;;
esac
exit $status
