#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   ./dev.sh start   install what is missing, build, run the dev server and a demo workflow
#   ./dev.sh test    install what is missing, build, run every test suite
#   ./dev.sh build   install what is missing and build
# Packages are installed with apt-get as root, or through sudo.
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=${REPRISE_BUILD_DIR:-build}
PACKAGES=(build-essential cmake ninja-build pkg-config ccache curl
          libboost1.74-dev libboost-context1.74-dev libpq-dev postgresql-15
          libfmt-dev nlohmann-json3-dev catch2 libspdlog-dev libcli11-dev libssl-dev)

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
  build reprise-server
  local port=${REPRISE_PORT:-7233} data_dir=${REPRISE_DATA_DIR:-.reprise}
  say "Starting reprise-server --dev (PostgreSQL cluster in $data_dir/postgres)"
  "$BUILD_DIR/history-service/reprise-server" --dev --data-dir "$data_dir" --port "$port" &
  local server=$!
  trap 'kill -TERM $server 2>/dev/null; wait $server' EXIT INT TERM
  local api="http://127.0.0.1:$port/api/v1/namespaces/default"
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
    kill -0 $server 2>/dev/null || { echo "reprise-server exited; see its output above" >&2; exit 1; }
    sleep 0.1
  done
  say "Serving on http://127.0.0.1:$port. A demo run, driven with curl as a worker would:"
  local id="demo-$(date +%s)"
  curl -sf -XPOST "$api/workflows" -d "{\"workflow_id\":\"$id\",\"workflow_type\":\"Demo\",\"task_queue\":\"demo\",\"input\":{\"hello\":\"world\"}}"; echo
  local token
  token=$(curl -sf -XPOST "$api/task-queues/demo/workflow-tasks/poll" -d '{"timeout":"5s"}' |
          sed -n 's/.*"task_token":"\([^"]*\)".*/\1/p')
  curl -sf -XPOST "$api/workflow-tasks/complete" \
    -d "{\"task_token\":\"$token\",\"commands\":[{\"command_type\":\"CompleteWorkflowExecution\",\"attributes\":{\"result\":\"done\"}}]}" >/dev/null
  curl -sf "$api/workflows/$id/history" | grep -o '"event_type":"[A-Za-z]*"' | cut -d'"' -f4 | nl
  cat <<MSG

Next:
  curl -s $api/workflows/$id            describe the run
  curl -s $api/workflows                list runs
  docs/api.md                           the whole HTTP API
  docs/architecture.md                  how it works
Press Ctrl-C to stop the server and its PostgreSQL.
MSG
  wait $server
}

case "${1:-}" in
  start) start ;;
  test) run_tests ;;
  build) build ;;
  *) echo "usage: ./dev.sh start | test | build" >&2; exit 2 ;;
esac
