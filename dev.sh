#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   ./dev.sh start   install what is missing, build, run the dev server and a demo workflow
#   ./dev.sh test    install what is missing, build, run every test suite
#   ./dev.sh build   install what is missing and build
# Packages are installed with apt-get as root, or through sudo.
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=${REPRISE_BUILD_DIR:-build}
PACKAGES=(build-essential cmake ninja-build pkg-config ccache curl python3
          libboost1.74-dev libboost-context1.74-dev libpq-dev postgresql-15
          libfmt-dev nlohmann-json3-dev catch2 libspdlog-dev libcli11-dev libssl-dev libjemalloc-dev libsimdjson-dev)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  say "Installing ${missing[*]}"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "Run as root or install sudo: these packages are missing: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
}

build() {
  install_missing
  say "Building in $BUILD_DIR"
  [[ -f $BUILD_DIR/build.ninja ]] ||
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${REPRISE_BUILD_TYPE:-RelWithDebInfo}"
  # Two jobs: C++ builds on this machine are memory- and core-bound; more only thrashes.
  ninja -C "$BUILD_DIR" -j"${REPRISE_JOBS:-2}" "$@"
}

run_tests() {
  build
  say "Running the tests"
  ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 1200
}

start() {
  build reprise-server reprise order-saga
  local port=${REPRISE_PORT:-7233} data_dir=${REPRISE_DATA_DIR:-.reprise}
  local address="127.0.0.1:$port" bin="$BUILD_DIR"
  mkdir -p "$data_dir"
  say "Starting reprise-server --dev (PostgreSQL cluster in $data_dir/postgres)"
  "$bin/history-service/reprise-server" --dev --data-dir "$data_dir" --port "$port" >"$data_dir/server.log" 2>&1 &
  local server=$! worker=""
  trap 'kill -TERM ${worker:-} ${server:-} 2>/dev/null; wait ${worker:-} ${server:-} 2>/dev/null' EXIT INT TERM
  for _ in $(seq 1 300); do
    curl -sf "http://$address/healthz" >/dev/null && break
    kill -0 $server 2>/dev/null || { echo "reprise-server exited; see $data_dir/server.log" >&2; exit 1; }
    sleep 0.1
  done
  say "Serving on http://$address (log: $data_dir/server.log). Starting the order-saga worker"
  "$bin/samples/order-saga/order-saga" --address "$address" worker >"$data_dir/worker.log" 2>&1 &
  worker=$!
  local id="order-$(date +%s)"
  say "Running one order to completion"
  "$bin/samples/order-saga/order-saga" --address "$address" start --id "$id" --amount 2500
  cat <<MSG

Look at it:
  $bin/cli/reprise --address $address describe -w $id
  $bin/cli/reprise --address $address history show -w $id
  $bin/cli/reprise --address $address list
Try a failing order (its compensations run):
  $bin/samples/order-saga/order-saga --address $address start --id declined-1 --card declined
Try one that waits for approval (then signal it from another shell):
  $bin/samples/order-saga/order-saga --address $address start --id big-1 --amount 250000
  $bin/cli/reprise --address $address signal -w big-1 --name approve --input true
Docs: README.md, docs/architecture.md, docs/api.md. Logs: $data_dir/*.log
Press Ctrl-C to stop the worker, the server and its PostgreSQL.
MSG
  wait $server
}

case "${1:-}" in
  start) start ;;
  test) run_tests ;;
  build) build ;;
  *) echo "usage: ./dev.sh start | test | build" >&2; exit 2 ;;
esac
