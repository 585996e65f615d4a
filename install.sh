#!/usr/bin/env bash
# EcsLite install: builds the coordinator and the agent, installs them, starts them (as systemd services
# where systemd runs, else in the background), waits until the coordinator serves and the agent has
# joined, and prints how to talk to them. The result is a single-host cluster.
#
#   ./install.sh            install or upgrade the coordinator and an agent on this host, then start them
#   ./install.sh agent      install only the agent, to join this host to a coordinator elsewhere, with a
#                           token from `ecslite-coordinator token create` on the coordinator's host:
#                           (ECSLITE_JOIN_TOKEN=ECSLITE1:... ECSLITE_COORDINATOR=https://HOST:7430 ./install.sh agent)
#   ./install.sh stop       stop what is running
#   ./install.sh uninstall  stop and remove the programs and units (cluster store and settings are kept)
#
# Settings (environment):
#   ECSLITE_LISTEN       the coordinator's gRPC address       (default 127.0.0.1:7430; 0.0.0.0:7430 for other hosts)
#   ECSLITE_COORDINATOR  where the agent dials                (default https://ECSLITE_LISTEN)
#   ECSLITE_JOIN_TOKEN   the agent's join token               (made here for the local agent; needed for `agent`)
#   ECSLITE_CLUSTER      the cluster the agent joins          (default default)
#   ECSLITE_PREFIX       where the programs go                (default /opt/ecslite)
#   ECSLITE_ETC          where the settings files go          (default /etc/ecslite)
#   ECSLITE_DATA_DIR     the coordinator's cluster store      (default /var/lib/ecslite/coordinator)
#   ECSLITE_AGENT_DIR    the agent's data directory           (default /var/lib/ecslite/agent)
#   ECSLITE_RUN_DIR      pids and logs without systemd        (default /var/log/ecslite)
#   ECSLITE_ADMIN_SOCKET the coordinator's admin socket       (default /run/ecslite/coordinator.sock)
#   ECSLITE_SYSTEMD      auto | yes | no                      (default auto: yes when systemd is running)
#   ECSLITE_PACKAGES     install the .deb packages of this architecture instead of building from source:
#                        a directory holding them (e.g. copied from a build host), or "build" to make
#                        them first with packaging/build-debs.sh. Programs then live in /usr/lib/ecslite,
#                        settings in /etc/ecslite, units in /lib/systemd/system (the packages' own).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
listen=${ECSLITE_LISTEN:-127.0.0.1:7430}
prefix=${ECSLITE_PREFIX:-/opt/ecslite}
etc=${ECSLITE_ETC:-/etc/ecslite}
data_dir=${ECSLITE_DATA_DIR:-/var/lib/ecslite/coordinator}
agent_dir=${ECSLITE_AGENT_DIR:-/var/lib/ecslite/agent}
cluster=${ECSLITE_CLUSTER:-default}
run_dir=${ECSLITE_RUN_DIR:-/var/log/ecslite}
admin_socket=${ECSLITE_ADMIN_SOCKET:-/run/ecslite/coordinator.sock}
use_systemd=${ECSLITE_SYSTEMD:-auto}
units=/etc/systemd/system
action=${1:-install}
packages=${ECSLITE_PACKAGES:-}
debarch=$(dpkg --print-architecture 2>/dev/null || echo unknown)
if [ -n "$packages" ]; then
  # where the packages put the programs and settings, and where their settings keep the data
  prefix=/usr/lib/ecslite etc=/etc/ecslite data_dir=/var/lib/ecslite/coordinator agent_dir=/var/lib/ecslite/agent
fi

# Each step is said as it starts; the time it took is said when the next one starts (and at the end).
step=""
step_started=$SECONDS
took() { [ -z "$step" ] || printf '    %s: %d s\n' "$step" $((SECONDS - step_started)); }
say() { took; printf '==> %s\n' "$*"; step="$*"; step_started=$SECONDS; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

if [ "$use_systemd" = auto ]; then
  if [ -d /run/systemd/system ] && [ "$(id -u)" = 0 ]; then use_systemd=yes; else use_systemd=no; fi
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

stop_service() { # name
  if [ "$use_systemd" = yes ]; then
    as_root systemctl stop "ecslite-$1" 2>/dev/null || true
  elif [ -f "$run_dir/$1.pid" ]; then
    pid=$(cat "$run_dir/$1.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$run_dir/$1.pid"
  fi
}

start_service() { # name, then the command line
  local name=$1; shift
  if [ "$use_systemd" = yes ]; then
    if [ -n "$packages" ]; then
      as_root rm -f "$units/ecslite-$name.service" # one left by a source install would hide the package's unit
    else
      sed -e "s#/opt/ecslite#$prefix#g" -e "s#/etc/ecslite#$etc#g" "$here/packaging/systemd/ecslite-$name.service" \
        | as_root tee "$units/ecslite-$name.service" >/dev/null
    fi
    as_root systemctl daemon-reload
    as_root systemctl enable "ecslite-$name" >/dev/null 2>&1
    as_root systemctl restart --no-block "ecslite-$name"
  else
    mkdir -p "$run_dir"
    nohup "$@" >>"$run_dir/$name.log" 2>&1 &
    echo $! >"$run_dir/$name.pid"
  fi
}

logs_of() { if [ "$use_systemd" = yes ]; then echo "journalctl -u ecslite-$1"; else echo "tail -f $run_dir/$1.log"; fi; }

# A gRPC health check with curl alone: an empty HealthCheckRequest, answered SERVING as 08 01. Over
# TLS without checking the certificate (-k): it sends nothing secret and only waits for a start.
serving() {
  local address=${listen#https://}
  printf '\0\0\0\0\0' | curl -sk --max-time 2 --http2 \
    -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @- \
    "https://${address/0.0.0.0/127.0.0.1}/grpc.health.v1.Health/Check" 2>/dev/null | od -An -tx1 | grep -q '08 01'
}

case "$action" in
  stop) stop_service agent; stop_service coordinator; say "stopped"; exit 0 ;;
  uninstall)
    stop_service agent; stop_service coordinator
    if [ -n "$packages" ]; then
      as_root dpkg --remove ecslite-agent ecslite-coordinator >/dev/null 2>&1 || true
    fi
    for name in agent coordinator; do
      if [ "$use_systemd" = yes ]; then
        as_root systemctl disable "ecslite-$name" 2>/dev/null || true
        as_root rm -f "$units/ecslite-$name.service"
      fi
      as_root rm -rf "${prefix:?}/$name"
    done
    [ "$use_systemd" = yes ] && as_root systemctl daemon-reload
    say "removed; the cluster store ($data_dir), the agent's identity ($agent_dir) and $etc are kept"
    exit 0 ;;
  install) components="coordinator agent" ;;
  agent) components="agent" ;;
  *) die "unknown action '$action' (install, agent, stop or uninstall)" ;;
esac

# A host joins another's coordinator with a token (unless it joined before and holds its certificate).
if [ "$components" = agent ] && [ -z "${ECSLITE_JOIN_TOKEN:-}" ] && [ ! -f "$agent_dir/tls/agent.crt" ]; then
  die "this host has not joined yet: on the coordinator's host run 'ecslite-coordinator token create', then ECSLITE_JOIN_TOKEN=<token> ECSLITE_COORDINATOR=https://HOST:7430 $0 agent"
fi

# 1. What the build and the health probe need.
missing=()
command -v curl >/dev/null || missing+=(curl)
if { [ -z "$packages" ] || [ "$packages" = build ]; } && { ! command -v dotnet >/dev/null || ! dotnet --list-sdks 2>/dev/null | grep -q '^10\.'; }; then
  missing+=(dotnet-sdk-10.0)
fi
command -v dockerd >/dev/null || missing+=(docker.io)   # the engine the agent runs tasks on
[ -e /usr/share/zoneinfo/UTC ] || missing+=(tzdata)     # the time zones schedules are read in
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq || true
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; then
    die "could not install ${missing[*]}; install the .NET 10 SDK (https://learn.microsoft.com/dotnet/core/install/linux) and run this again"
  fi
fi

case "$(uname -m)" in
  x86_64) rid=linux-x64 ;;
  aarch64|arm64) rid=linux-arm64 ;;
  *) die "unsupported CPU architecture $(uname -m) (x86_64 and aarch64 are)" ;;
esac

# 2. Build. The coordinator: framework-dependent and ReadyToRun, so it serves soon after it starts.
#    The agent: NativeAOT (one executable, no .NET on the host, 33 MB idle instead of 51 MB), which
#    needs clang, lld and zlib's headers; without them, self-contained and trimmed
#    (docs/benchmarks.md has the measurements behind these choices).
#    With ECSLITE_PACKAGES, the packages are installed instead ("build": made here first).
native=yes
if { { [ -z "$packages" ] && [[ " $components " == *" agent "* ]]; } || [ "$packages" = build ]; } \
  && { ! command -v clang >/dev/null || ! command -v ld.lld >/dev/null || [ ! -e /usr/include/zlib.h ]; }; then
  say "installing clang lld zlib1g-dev (the agent's native build)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang lld zlib1g-dev >/dev/null 2>&1 \
    || { native=no; say "clang, lld or zlib1g-dev could not be installed: the agent is built trimmed instead of NativeAOT"; }
fi
if [ "$packages" = build ]; then
  [ "$native" = yes ] || die "the packages need the NativeAOT agent, and so clang, lld and zlib1g-dev"
  say "building the packages (packaging/build-debs.sh $debarch)"
  "$here/packaging/build-debs.sh" --no-lintian "$debarch" >/dev/null || die "building the packages failed"
  packages=$here/artifacts/deb
fi
debs=()
if [ -n "$packages" ]; then
  for name in $components; do
    deb=$(ls -t "$packages"/ecslite-"$name"_*_"$debarch".deb 2>/dev/null | head -1)
    [ -n "$deb" ] || die "no ecslite-${name}_VERSION_$debarch.deb in $packages (packaging/build-debs.sh $debarch makes it)"
    debs+=("$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")")
  done
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
if [ ${#debs[@]} -eq 0 ]; then
  for name in $components; do
    say "building ecslite-$name for $rid"
    if [ "$name" = agent ]; then
      build=(dotnet publish "$here/agent/EcsLite.Agent/EcsLite.Agent.csproj" -c Release -r "$rid" -nologo -v quiet -o "$stage/agent")
      # NativeAOT is the project's own setting; without clang, a trimmed self-contained JIT build
      [ "$native" = yes ] || build+=(-p:PublishAot=false --self-contained true -p:PublishTrimmed=true -p:TrimMode=partial)
    else
      build=(dotnet publish "$here/coordinator/EcsLite.Coordinator/EcsLite.Coordinator.csproj" -c Release -r "$rid"
        --self-contained false -p:PublishReadyToRun=true -nologo -v quiet -o "$stage/coordinator")
    fi
    if ! "${build[@]}" >"$stage/$name.build.log" 2>&1; then
      cat "$stage/$name.build.log" >&2
      die "building ecslite-$name failed"
    fi
    rm -f "$stage/$name"/*.pdb "$stage/$name"/*.dbg   # debugging symbols: not for the hosts
  done
fi

# 3. Install programs and settings (existing settings files are kept).
for name in $components; do stop_service "$name"; done
if [ ${#debs[@]} -gt 0 ]; then
  # apt resolves the packages' dependencies (a Docker engine among them); settings edited since are kept.
  say "installing ${debs[*]##*/}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold "${debs[@]}" >/dev/null \
    || as_root dpkg --install --force-confold "${debs[@]}" >/dev/null || die "installing ${debs[*]} failed"
else
  as_root mkdir -p "$prefix" "$etc"
  for name in $components; do
    as_root rm -rf "${prefix:?}/$name"
    as_root cp -r "$stage/$name" "$prefix/$name"
  done
fi
[ -n "$packages" ] || as_root cp "$here/examples/fargate-task-definition.json" "$prefix/" 2>/dev/null || true

if [[ " $components " == *" coordinator "* ]]; then
  as_root mkdir -p "$data_dir"
  if [ ! -f "$etc/coordinator.json" ]; then
    printf '{\n  "Listen": "%s",\n  "DataDir": "%s",\n  "AdminSocket": "%s",\n  "Region": "local",\n  "AccountId": "000000000000"\n}\n' \
      "$listen" "$data_dir" "$admin_socket" | as_root tee "$etc/coordinator.json" >/dev/null
  fi
  listen=$(sed -n 's/.*"Listen": *"\([^"]*\)".*/\1/p' "$etc/coordinator.json")
  listen=${listen:-127.0.0.1:7430}
  admin_socket=$(sed -n 's/.*"AdminSocket": *"\([^"]*\)".*/\1/p' "$etc/coordinator.json")
  admin_socket=${admin_socket:-/run/ecslite/coordinator.sock}
  say "starting the coordinator"
  start_service coordinator "$prefix/coordinator/ecslite-coordinator" --config "$etc/coordinator.json"
  for _ in $(seq 1 300); do serving && break; sleep 0.1; done
  serving || die "the coordinator did not start serving on $listen; see: $(logs_of coordinator)"
  # The cluster CA is public: a copy where grpcurl's -cacert can read it.
  as_root install -m 0644 "$data_dir/tls/ca.crt" "$etc/ca.crt"
  # The local agent joins with a token made for it alone (one use, one hour), unless it already has its certificate.
  if [ -z "${ECSLITE_JOIN_TOKEN:-}" ] && [ ! -f "$agent_dir/tls/agent.crt" ]; then
    ECSLITE_JOIN_TOKEN=$(as_root "$prefix/coordinator/ecslite-coordinator" token create --admin-socket "$admin_socket" \
      --ttl 1h --uses 1 --description "install.sh: the agent on $(hostname)" 2>/dev/null) || die "could not make a join token for the local agent"
  fi
fi

coordinator_url=${ECSLITE_COORDINATOR:-https://${listen/0.0.0.0/127.0.0.1}}
if [ ! -f "$etc/agent.conf" ]; then
  printf '# ecslite-agent settings, in ECS'"'"'s ecs.config format (see docs/configuration.md)\nECS_CLUSTER=%s\nECSLITE_COORDINATOR=%s\nECS_DATADIR=%s\n' \
    "$cluster" "$coordinator_url" "$agent_dir" | as_root tee "$etc/agent.conf" >/dev/null
fi
as_root chmod 600 "$etc/agent.conf"
# A coordinator named now (or, with the packages, whose agent.conf names a default) is the one to dial.
if [ -n "${ECSLITE_COORDINATOR:-}" ] || [ -n "$packages" ]; then
  as_root sed -i "s#^ECSLITE_COORDINATOR=.*#ECSLITE_COORDINATOR=$coordinator_url#" "$etc/agent.conf"
fi
# Settings from before TLS named the coordinator with http://: every coordinator is https:// now.
as_root sed -i '/^ECSLITE_COORDINATOR=/s#http://#https://#g' "$etc/agent.conf"
if [ -n "${ECSLITE_JOIN_TOKEN:-}" ]; then
  as_root sed -i '/^ECSLITE_JOIN_TOKEN=/d' "$etc/agent.conf"
  printf 'ECSLITE_JOIN_TOKEN=%s\n' "$ECSLITE_JOIN_TOKEN" | as_root tee -a "$etc/agent.conf" >/dev/null
  unset ECSLITE_JOIN_TOKEN # read from agent.conf, not left in the agent's environment
fi
# The agent drives the local Docker engine: make sure one answers.
if ! as_root docker version >/dev/null 2>&1; then
  say "starting the Docker engine"
  if [ "$use_systemd" = yes ]; then
    as_root systemctl enable --now docker >/dev/null 2>&1 || true
  else
    mkdir -p "$run_dir"
    as_root sh -c "nohup dockerd >>'$run_dir/dockerd.log' 2>&1 &"
  fi
  for _ in $(seq 1 100); do as_root docker version >/dev/null 2>&1 && break; sleep 0.3; done
  as_root docker version >/dev/null 2>&1 || say "warning: no Docker engine answers; the agent will join but cannot run tasks"
fi
as_root mkdir -p "$agent_dir"
say "starting the agent"
DOTNET_GCgen0size=40000 start_service agent "$prefix/agent/ecslite-agent" --config "$etc/agent.conf"
for _ in $(seq 1 300); do [ -f "$agent_dir/instance.json" ] && break; sleep 0.1; done
[ -f "$agent_dir/instance.json" ] || die "the agent did not join $coordinator_url; see: $(logs_of agent)"
# The token is spent: the agent holds its own certificate now (in $agent_dir/tls).
as_root sed -i '/^ECSLITE_JOIN_TOKEN=/d' "$etc/agent.conf"
instance=$(sed -n 's/.*"ContainerInstanceArn":"\([^"]*\)".*/\1/p' "$agent_dir/instance.json")

took
printf '==> done in %d s\n' "$SECONDS"

if [ "$components" = agent ]; then
  cat <<DONE

This host joined the cluster as $instance
Agent logs: $(logs_of agent)        Stop: $0 stop
DONE
  exit 0
fi

cat <<DONE

EcsLite is running: a single-host cluster.
  coordinator  serving on $listen (gRPC over TLS, reflection on; cluster store in $data_dir)
  agent        joined as $instance (mutual TLS, its certificate in $agent_dir/tls)
Logs: $(logs_of coordinator); $(logs_of agent)        Stop: $0 stop

Talk to it with grpcurl (any gRPC client works; reflection is on). As root on this host, the admin
socket answers as the administrator; from elsewhere, send an access key (docs/security.md):
  ECS="-unix $admin_socket"
  grpcurl -plaintext \$ECS list ecslite.v1.Ecs
  grpcurl -plaintext \$ECS ecslite.v1.Ecs/ListContainerInstances
  grpcurl -plaintext -d '{"containerInstances": ["$instance"]}' \$ECS ecslite.v1.Ecs/DescribeContainerInstances
  grpcurl -plaintext -d @ \$ECS ecslite.v1.Ecs/RegisterTaskDefinition < $here/examples/fargate-task-definition.json
Over TCP it is TLS with the cluster CA ($etc/ca.crt) and the administrator's access key, which is in
$data_dir/admin-credentials (AWS shared-credentials format):
  KEY=\$(sudo awk -F' = ' '/_id/{i=\$2} /_secret/{s=\$2} END{print i":"s}' $data_dir/admin-credentials)
  grpcurl -cacert $etc/ca.crt -H "authorization: Bearer \$KEY" ${listen/0.0.0.0/127.0.0.1} ecslite.v1.Ecs/ListClusters

See it in a browser: https://${listen/0.0.0.0/127.0.0.1}/dashboard/ (sign in with the access key above);
Prometheus metrics: https://${listen/0.0.0.0/127.0.0.1}/metrics and http://127.0.0.1:51680/metrics (docs/observability.md).

Run the example task (it serves a page on port 80), watch it, read its logs, stop it:
  grpcurl -plaintext -d '{"taskDefinition": "fargate-task-definition", "launchType": "FARGATE"}' \$ECS ecslite.v1.Ecs/RunTask
  grpcurl -plaintext -d '{"tasks": ["TASK-ARN"]}' \$ECS ecslite.v1.Ecs/DescribeTasks
  curl http://127.0.0.1/
  grpcurl -plaintext -d '{"task": "TASK-ARN", "follow": true}' \$ECS ecslite.v1.TaskLogs/GetTaskLogs
  grpcurl -plaintext -d '{"task": "TASK-ARN"}' \$ECS ecslite.v1.Ecs/StopTask

Join another host: set "Listen": "0.0.0.0:7430" in $etc/coordinator.json and restart; make a token
  sudo $prefix/coordinator/ecslite-coordinator token create --admin-socket $admin_socket
then on that host (the token pins this cluster's CA, so the agent knows it reached the right coordinator):
  ECSLITE_JOIN_TOKEN=<token> ECSLITE_COORDINATOR=https://THIS-HOST:7430 ./install.sh agent
DONE
