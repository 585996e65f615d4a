#!/usr/bin/env bash
# EcsLite install: builds the coordinator, installs it, starts it (as a systemd service where systemd
# runs, else in the background), waits until it serves, and prints how to talk to it.
#
#   ./install.sh            install or upgrade, then start
#   ./install.sh stop       stop the coordinator
#   ./install.sh uninstall  stop it and remove the programs and unit (the cluster store is kept)
#
# Settings (environment):
#   ECSLITE_LISTEN    gRPC address                         (default 127.0.0.1:7430)
#   ECSLITE_PREFIX    where the programs go                (default /opt/ecslite)
#   ECSLITE_ETC       where coordinator.json goes          (default /etc/ecslite)
#   ECSLITE_DATA_DIR  the cluster store                    (default /var/lib/ecslite/coordinator)
#   ECSLITE_RUN_DIR   pid and log without systemd          (default /var/log/ecslite)
#   ECSLITE_SYSTEMD   auto | yes | no                      (default auto: yes when systemd is running)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
listen=${ECSLITE_LISTEN:-127.0.0.1:7430}
prefix=${ECSLITE_PREFIX:-/opt/ecslite}
etc=${ECSLITE_ETC:-/etc/ecslite}
data_dir=${ECSLITE_DATA_DIR:-/var/lib/ecslite/coordinator}
run_dir=${ECSLITE_RUN_DIR:-/var/log/ecslite}
use_systemd=${ECSLITE_SYSTEMD:-auto}
unit=/etc/systemd/system/ecslite-coordinator.service
action=${1:-install}

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

if [ "$use_systemd" = auto ]; then
  if [ -d /run/systemd/system ] && [ "$(id -u)" = 0 ]; then use_systemd=yes; else use_systemd=no; fi
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

stop_coordinator() {
  if [ "$use_systemd" = yes ]; then
    as_root systemctl stop ecslite-coordinator 2>/dev/null || true
  elif [ -f "$run_dir/coordinator.pid" ]; then
    pid=$(cat "$run_dir/coordinator.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$run_dir/coordinator.pid"
  fi
}

# A gRPC health check with curl alone: an empty HealthCheckRequest, answered SERVING as 08 01.
serving() {
  printf '\0\0\0\0\0' | curl -s --max-time 2 --http2-prior-knowledge \
    -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @- \
    "http://${listen#http://}/grpc.health.v1.Health/Check" 2>/dev/null | od -An -tx1 | grep -q '08 01'
}

case "$action" in
  stop) stop_coordinator; say "coordinator stopped"; exit 0 ;;
  uninstall)
    stop_coordinator
    if [ "$use_systemd" = yes ]; then
      as_root systemctl disable ecslite-coordinator 2>/dev/null || true
      as_root rm -f "$unit"; as_root systemctl daemon-reload
    fi
    as_root rm -rf "$prefix/coordinator"
    say "removed; the cluster store in $data_dir and $etc/coordinator.json are kept"
    exit 0 ;;
  install) ;;
  *) die "unknown action '$action' (install, stop or uninstall)" ;;
esac

# 1. What the build and the health probe need.
missing=()
command -v curl >/dev/null || missing+=(curl)
if ! command -v dotnet >/dev/null || ! dotnet --list-sdks 2>/dev/null | grep -q '^10\.'; then
  missing+=(dotnet-sdk-10.0)
fi
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

# 2. Build: framework-dependent, ReadyToRun-compiled so it starts serving quickly.
say "building ecslite-coordinator for $rid"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dotnet publish "$here/coordinator/EcsLite.Coordinator/EcsLite.Coordinator.csproj" -c Release -r "$rid" \
  --self-contained false -p:PublishReadyToRun=true -nologo -v quiet -o "$stage/coordinator" >/dev/null

# 3. Install programs and settings (an existing coordinator.json is kept).
stop_coordinator
as_root mkdir -p "$prefix" "$etc" "$data_dir"
as_root rm -rf "$prefix/coordinator"
as_root cp -r "$stage/coordinator" "$prefix/coordinator"
as_root cp "$here/examples/fargate-task-definition.json" "$prefix/" 2>/dev/null || true
if [ ! -f "$etc/coordinator.json" ]; then
  printf '{\n  "Listen": "%s",\n  "DataDir": "%s",\n  "Region": "local",\n  "AccountId": "000000000000"\n}\n' \
    "$listen" "$data_dir" | as_root tee "$etc/coordinator.json" >/dev/null
fi
listen=$(sed -n 's/.*"Listen": *"\([^"]*\)".*/\1/p' "$etc/coordinator.json")
listen=${listen:-127.0.0.1:7430}

# 4. Start.
if [ "$use_systemd" = yes ]; then
  sed -e "s#/opt/ecslite#$prefix#g" -e "s#/etc/ecslite#$etc#g" "$here/packaging/systemd/ecslite-coordinator.service" \
    | as_root tee "$unit" >/dev/null
  as_root systemctl daemon-reload
  as_root systemctl enable --now ecslite-coordinator >/dev/null
  as_root systemctl restart ecslite-coordinator
  logs="journalctl -u ecslite-coordinator"
else
  mkdir -p "$run_dir"
  nohup "$prefix/coordinator/ecslite-coordinator" \
    --config "$etc/coordinator.json" >>"$run_dir/coordinator.log" 2>&1 &
  echo $! >"$run_dir/coordinator.pid"
  logs="tail -f $run_dir/coordinator.log"
fi

for _ in $(seq 1 300); do serving && break; sleep 0.1; done
serving || die "the coordinator did not start serving on $listen; see: $logs"

cat <<DONE

EcsLite coordinator is serving on $listen (gRPC with reflection; cluster store in $data_dir).
Logs: $logs        Stop: $0 stop

Talk to it with grpcurl (any gRPC client works; reflection is on):
  grpcurl -plaintext $listen list ecslite.v1.Ecs
  grpcurl -plaintext $listen ecslite.v1.Ecs/ListClusters
  grpcurl -plaintext -d @ $listen ecslite.v1.Ecs/RegisterTaskDefinition < $here/examples/fargate-task-definition.json
  grpcurl -plaintext -d '{"taskDefinition": "fargate-task-definition"}' $listen ecslite.v1.Ecs/DescribeTaskDefinition

Running tasks needs an agent on each host (ecslite-agent), which arrives with the agent issue.
DONE
