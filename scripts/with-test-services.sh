#!/usr/bin/env bash
# Runs a command with the services the managed-profile tests need, each private to this run:
#   - PostgreSQL on 127.0.0.1:5432: a fresh database ecto_test_<run>, dropped afterwards;
#   - Redis on 127.0.0.1:6379: a key prefix ecto-test:<run>: (its keys are deleted afterwards);
#   - an S3 emulator (s3s-fs) on a free port with a fresh bucket in a temporary directory;
#   - a Redis Cluster of three masters (redis-server --cluster-enabled) on free ports, made for
#     this run and shut down afterwards.
# What is not running is started; what is not installed is installed. Anything that cannot be
# had is a loud failure: the tests never skip.
set -euo pipefail

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-postgres}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
S3S_VERSION=0.14.1

say() { echo "test-services: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

apt_install() {
  command -v apt-get >/dev/null || die "cannot install $* (no apt-get)"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >&2 || true; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

pg_ready() { pg_isready -h "$PG_HOST" -p "$PG_PORT" -q 2>/dev/null; }
ensure_postgres() {
  command -v psql >/dev/null || apt_install postgresql-client
  if ! pg_ready; then
    say "PostgreSQL is not answering on $PG_HOST:$PG_PORT; starting it"
    command -v pg_ctlcluster >/dev/null || apt_install postgresql
    for v in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 || true
    done
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
    pg_ready || die "PostgreSQL did not start on $PG_HOST:$PG_PORT"
  fi
}

redis_ready() { [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }
ensure_redis() {
  command -v redis-cli >/dev/null || apt_install redis-tools
  if ! redis_ready; then
    say "Redis is not answering on $REDIS_HOST:$REDIS_PORT; starting it"
    command -v redis-server >/dev/null || apt_install redis-server
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no >&2
    for _ in $(seq 1 30); do redis_ready && break; sleep 0.5; done
    redis_ready || die "Redis did not start on $REDIS_HOST:$REDIS_PORT"
  fi
}

ensure_s3s() {
  export PATH="$HOME/.cargo/bin:$PATH"
  if ! command -v s3s-fs >/dev/null; then
    say "installing the S3 emulator s3s-fs $S3S_VERSION (about two minutes)"
    cargo install "s3s-fs@$S3S_VERSION" --locked --features binary >&2 || die "cannot install s3s-fs"
  fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

run_id="$(date +%s)_$$"
db="ecto_test_${run_id}"
work=$(mktemp -d)
s3_pid=""
cluster_ports=""
cleanup() {
  [ -n "$s3_pid" ] && kill "$s3_pid" 2>/dev/null || true
  for p in $cluster_ports; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  # The run's database, and those tests made beside it (named after it).
  for d in $(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atc \
      "SELECT datname FROM pg_database WHERE datname = '$db' OR datname LIKE '${db}\_%'" 2>/dev/null); do
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
  redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "ecto-test:${run_id}:*" 2>/dev/null \
    | xargs -r -n 500 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" del >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

ensure_postgres
ensure_redis
ensure_s3s

# A port free for a cluster node: the node also listens on it + 10000 (the cluster bus).
free_node_port() {
  python3 - <<'PY'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
while True:
    p = random.randint(20000, 29999)
    if free(p) and free(p + 10000):
        print(p); break
PY
}

start_redis_cluster() {
  command -v redis-server >/dev/null || apt_install redis-server
  local nodes=""
  for _ in 1 2 3; do
    local p
    p=$(free_node_port)
    mkdir -p "$work/cluster/$p"
    redis-server --port "$p" --bind 127.0.0.1 --dir "$work/cluster/$p" \
      --cluster-enabled yes --cluster-config-file "nodes-$p.conf" --cluster-node-timeout 2000 \
      --save "" --appendonly no --daemonize yes \
      --pidfile "$work/cluster/$p/redis.pid" --logfile "$work/cluster/$p/redis.log" >&2 \
      || die "cannot start a Redis Cluster node on port $p"
    cluster_ports="$cluster_ports $p"
    nodes="$nodes 127.0.0.1:$p"
  done
  for p in $cluster_ports; do
    for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  # shellcheck disable=SC2086
  redis-cli --cluster create $nodes --cluster-replicas 0 --cluster-yes >"$work/cluster/create.log" 2>&1 \
    || { cat "$work/cluster/create.log" >&2; die "cannot create the Redis Cluster"; }
  for p in $cluster_ports; do
    for _ in $(seq 1 100); do
      redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break
      sleep 0.1
    done
    redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' \
      || die "the Redis Cluster did not come up (node $p)"
  done
  ECTO_TEST_REDIS_CLUSTER_URL=$(for p in $cluster_ports; do printf 'redis://127.0.0.1:%s,' "$p"; done)
  export ECTO_TEST_REDIS_CLUSTER_URL="${ECTO_TEST_REDIS_CLUSTER_URL%,}"
}
start_redis_cluster

psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "CREATE DATABASE $db" >/dev/null \
  || die "cannot create database $db as $PG_USER"

s3_port=$(free_port)
s3_key="ectotest"
s3_secret="ectotest-secret-$(date +%s)"
mkdir -p "$work/s3/ecto-test"
s3s-fs --host 127.0.0.1 --port "$s3_port" --access-key "$s3_key" --secret-key "$s3_secret" "$work/s3" \
  >"$work/s3s.log" 2>&1 &
s3_pid=$!
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break
  kill -0 "$s3_pid" 2>/dev/null || { cat "$work/s3s.log" >&2; die "s3s-fs exited"; }
  sleep 0.1
done

export ECTO_TEST_DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$db"
export ECTO_TEST_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
export ECTO_TEST_REDIS_PREFIX="ecto-test:${run_id}:"
export ECTO_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export ECTO_TEST_S3_BUCKET="ecto-test"
export ECTO_TEST_S3_ACCESS_KEY="$s3_key"
export ECTO_TEST_S3_SECRET_KEY="$s3_secret"
say "PostgreSQL database $db, Redis prefix $ECTO_TEST_REDIS_PREFIX, S3 at $ECTO_TEST_S3_ENDPOINT, Redis Cluster at $ECTO_TEST_REDIS_CLUSTER_URL"

set +e
"$@"
status=$?
set -e
exit $status
