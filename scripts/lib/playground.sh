# Shared by scripts/e2e-teams and scripts/playground (sourced, not run): what it takes to run
# Microsoft's Agents Playground offline. It phones home even with its telemetry off, so it runs
# only inside a network namespace that has nothing but loopback.
#
#   playground_require_linux NAME     exits 2 unless this is Linux (network namespaces)
#   playground_install [TOOL...]      installs node, npm, unshare, ip and the TOOLs (chromium,
#                                     socat) from Debian's packages when missing, then the pinned
#                                     npm packages of tests/e2e (the Playground, playwright-core)
#   "${playground_unshare[@]}" CMD    runs CMD in a new network namespace (loopback still down:
#                                     CMD starts with `ip link set lo up`)
#   playground_nsenter PID            the command that enters the namespace of process PID
#
# Runs from the repository's root (the scripts cd there first). As root, or with sudo for apt-get
# and an unprivileged user namespace (`unshare -rn`) where the kernel allows one.

PLAYGROUND_BIN=tests/e2e/node_modules/.bin/agentsplayground

playground_require_linux() {
  if [ "$(uname -s)" != Linux ]; then
    echo "$1: needs Linux (network namespaces)" >&2
    exit 2
  fi
}

playground_as_root=()
if [ "$(id -u)" != 0 ]; then
  playground_as_root=(sudo)
fi

_playground_apt_updated=
playground_apt_install() {
  if [ -z "$_playground_apt_updated" ]; then
    "${playground_as_root[@]}" apt-get update -qq
    _playground_apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive "${playground_as_root[@]}" \
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

playground_install() {
  local tool
  for tool in "$@"; do
    case $tool in
      chromium) [ -x /usr/bin/chromium ] || { echo "== installing chromium"; playground_apt_install chromium; } ;;
      socat) command -v socat >/dev/null || { echo "== installing socat"; playground_apt_install socat; } ;;
      *) echo "playground_install: unknown tool $tool" >&2; return 2 ;;
    esac
  done
  command -v node >/dev/null && command -v npm >/dev/null || { echo "== installing node"; playground_apt_install nodejs npm; }
  command -v unshare >/dev/null && command -v nsenter >/dev/null || playground_apt_install util-linux
  command -v ip >/dev/null || playground_apt_install iproute2

  echo "== npm ci (tests/e2e: the Agents Playground and playwright-core)"
  (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
}

if [ "$(id -u)" = 0 ]; then
  playground_unshare=(unshare -n)
else
  playground_unshare=(unshare -rn)  # an unprivileged user namespace, where the kernel allows one
fi

playground_nsenter() {
  if [ "$(id -u)" = 0 ]; then
    echo "nsenter --target $1 --net"
  else
    echo "nsenter --target $1 --user --net --preserve-credentials"
  fi
}

# ---- scripts/playground: the bot and the Playground for a person to try --------------------

PLAYGROUND_INSIDE_PORT=56150  # the Playground's port in the namespace (nothing else is there)
PLAYGROUND_BOT_PORT=3978

# Waits until URL answers (60 s); fails early, with the log's tail, if process PID stops.
playground_wait_http() {  # URL PID LOG WHAT
  local tries
  for ((tries = 0; tries < 300; tries++)); do
    if ! kill -0 "$2" 2>/dev/null; then
      { echo "playground: $4 stopped; the end of its log ($3):"; tail -n 30 "$3"; } >&2
      return 1
    fi
    if .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  { echo "playground: $4 did not answer $1 within 60 s; the end of its log ($3):"; tail -n 30 "$3"; } >&2
  return 1
}

# Run in the new network namespace by scripts/playground (RUN: its directory): loopback up, the
# bot (scripts/run serve, local mode, a fresh SQLite file in RUN), the Playground pointed at it,
# and with BRIDGE=1 a Unix socket RUN/playground.sock that leads to the Playground (a socket file
# is reachable from outside the namespace, a port is not). Writes RUN/namespace.pid, then
# RUN/ready; runs until one of them stops or it is sent SIGTERM, and stops the others.
_playground_pids=()
_playground_stop() {
  trap - EXIT TERM INT
  [ "${#_playground_pids[@]}" -eq 0 ] || kill "${_playground_pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
playground_serve() {  # RUN BRIDGE
  local run=$1 bridge=${2:-}
  trap _playground_stop EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  ip link set lo up
  echo "$$" >"$run/namespace.pid"

  # The bot on its defaults, and nothing from .env that needs the network or a registration: no
  # Teams credentials (local mode), no Slack, no ticket webhook, its own database.
  env MICROSOFT_APP_ID= MICROSOFT_APP_PASSWORD= MICROSOFT_APP_TENANT_ID= TEAMS_LOCAL_ALLOW_REMOTE=false \
    SLACK_BOT_TOKEN= SLACK_SIGNING_SECRET= SLACK_APP_TOKEN= TICKET_WEBHOOK_URL= TICKET_WEBHOOK_SECRET= \
    DATABASE_URL="sqlite+aiosqlite:///$run/ndrbot.db" \
    scripts/run serve --host 127.0.0.1 --port "$PLAYGROUND_BOT_PORT" >"$run/bot.log" 2>&1 &
  _playground_pids+=($!)
  playground_wait_http "http://127.0.0.1:$PLAYGROUND_BOT_PORT/healthz" "$!" "$run/bot.log" "the bot" || return 1

  env APPLICATION_INSIGHTS_NO_STATSBEAT=1 TEAMSAPPTESTER_BROWSER=none \
    "$PLAYGROUND_BIN" -e "http://127.0.0.1:$PLAYGROUND_BOT_PORT/api/messages" -c msteams \
    -p "$PLAYGROUND_INSIDE_PORT" --disable-telemetry >"$run/playground.log" 2>&1 &
  _playground_pids+=($!)
  playground_wait_http "http://127.0.0.1:$PLAYGROUND_INSIDE_PORT/_internal/v1/config" "$!" \
    "$run/playground.log" "the Playground" || return 1

  if [ -n "$bridge" ]; then
    socat "UNIX-LISTEN:$run/playground.sock,fork,mode=600" "TCP:127.0.0.1:$PLAYGROUND_INSIDE_PORT" \
      2>>"$run/bridge.log" &
    _playground_pids+=($!)
  fi
  : >"$run/ready"
  wait -n "${_playground_pids[@]}" || true
}
