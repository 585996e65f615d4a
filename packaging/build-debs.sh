#!/usr/bin/env bash
# Builds the Debian packages ecslite-agent and ecslite-coordinator with dpkg-deb:
#   programs in /usr/lib/ecslite, settings in /etc/ecslite (conffiles), data in /var/lib/ecslite (kept on
#   remove, deleted on purge), units in /lib/systemd/system (enabled and started on install where systemd runs).
# The agent is the NativeAOT executable (packaging/build-agent.sh, so its build tools are needed; arm64
# is cross-built); the coordinator is self-contained and ReadyToRun, since no .NET runtime comes with
# Debian. Checked with lintian (when it is installed; not with --no-lintian).
# Usage: packaging/build-debs.sh [--version V] [--no-lintian] [amd64] [arm64]   (default: this machine's architecture)
#   -> artifacts/deb/ecslite-{agent,coordinator}_V_ARCH.deb
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)
arches=()
lint=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --no-lintian) lint=no; shift ;;
    amd64|arm64) arches+=("$1"); shift ;;
    *) echo "build-debs.sh: unknown argument '$1'" >&2; exit 1 ;;
  esac
done
[ ${#arches[@]} -gt 0 ] || arches=("$(dpkg --print-architecture)")
maintainer="EcsLite developers <ecslite@example.org>"
out="$here/artifacts/deb"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The common parts of a package: the unit (its paths moved to /usr/lib/ecslite), docs, scripts, control.
package() { # name arch depends description-line description-body
  local name=$1 arch=$2 depends=$3 summary=$4 body=$5 root=$work/$1-$2
  install -d "$root/lib/systemd/system" "$root/usr/share/doc/ecslite-$name" "$root/DEBIAN"
  sed "s#/opt/ecslite/#/usr/lib/ecslite/#g" "packaging/systemd/ecslite-$name.service" >"$root/lib/systemd/system/ecslite-$name.service"
  chmod 0644 "$root/lib/systemd/system/ecslite-$name.service"
  install -m 0644 packaging/deb/copyright "$root/usr/share/doc/ecslite-$name/copyright"
  install -D -m 0644 "packaging/deb/ecslite-$name.lintian-overrides" "$root/usr/share/lintian/overrides/ecslite-$name"
  printf 'ecslite-%s (%s) unstable; urgency=medium\n\n  * Built from the EcsLite repository (%s).\n\n -- %s  %s\n' \
    "$name" "$version" "$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)" "$maintainer" "$(date -R -u)" \
    | gzip -9n >"$root/usr/share/doc/ecslite-$name/changelog.gz"
  chmod 0644 "$root/usr/share/doc/ecslite-$name/changelog.gz"
  for script in postinst prerm postrm; do
    sed "s/@NAME@/$name/g" "packaging/deb/$script" >"$root/DEBIAN/$script"
    chmod 0755 "$root/DEBIAN/$script"
  done
  find "$root/etc" -type f 2>/dev/null | sed "s#^$root##" >"$root/DEBIAN/conffiles"
  (cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
  cat >"$root/DEBIAN/control" <<CONTROL
Package: ecslite-$name
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Section: admin
Priority: optional
Description: $summary
$(printf '%s\n' "$body" | sed 's/^/ /')
CONTROL
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/ecslite-${name}_${version}_${arch}.deb" >/dev/null
  echo "$out/ecslite-${name}_${version}_${arch}.deb"
}

for arch in "${arches[@]}"; do
  case "$arch" in
    amd64) rid=x64; strip=x86_64-linux-gnu-strip ;;
    arm64) rid=arm64; strip=aarch64-linux-gnu-strip ;;
  esac

  # ecslite-agent
  root=$work/agent-$arch
  packaging/build-agent.sh "$rid" >/dev/null
  install -d "$root/usr/lib/ecslite/agent" "$root/etc/ecslite"
  install -m 0755 "artifacts/agent/linux-$rid/ecslite-agent" "$root/usr/lib/ecslite/agent/ecslite-agent"
  # 0600: the join token is written here until the host has joined.
  install -m 0600 packaging/deb/agent.conf "$root/etc/ecslite/agent.conf"
  package agent "$arch" "libc6 (>= 2.34), libssl3 | libssl3t64, docker.io | docker-ce | moby-engine" \
    "EcsLite agent: joins this host to an ECS-compatible cluster" \
    "The agent reports this host's CPU, memory and ports to an EcsLite
coordinator over one outbound gRPC stream (mutual TLS) and runs the tasks
it is given as Docker containers, as the Amazon ECS container agent does.
One NativeAOT executable; no .NET runtime is needed.
.
To join: set ECSLITE_COORDINATOR and ECSLITE_JOIN_TOKEN in
/etc/ecslite/agent.conf, then: systemctl restart ecslite-agent"

  # ecslite-coordinator
  root=$work/coordinator-$arch
  install -d "$root/usr/lib/ecslite" "$root/usr/bin" "$root/etc/ecslite"
  dotnet publish coordinator/EcsLite.Coordinator -c Release -r "linux-$rid" --self-contained true \
    -p:PublishReadyToRun=true -nologo -v quiet -o "$root/usr/lib/ecslite/coordinator" >/dev/null
  rm -f "$root/usr/lib/ecslite/coordinator/"*.pdb
  # Libraries and assemblies are data to the loader, not programs: only the apphost is executable.
  find "$root/usr/lib/ecslite/coordinator" -type f -exec chmod 0644 {} +
  chmod 0755 "$root/usr/lib/ecslite/coordinator/ecslite-coordinator"
  "$strip" --strip-unneeded "$root/usr/lib/ecslite/coordinator/libe_sqlite3.so" # SQLite's NuGet build keeps its symbols
  ln -s ../lib/ecslite/coordinator/ecslite-coordinator "$root/usr/bin/ecslite-coordinator"
  install -m 0644 packaging/deb/coordinator.json "$root/etc/ecslite/coordinator.json"
  package coordinator "$arch" "libc6 (>= 2.34), libgcc-s1, libstdc++6, libssl3 | libssl3t64" \
    "EcsLite coordinator: an ECS-compatible control plane for your own hosts" \
    "The coordinator holds an EcsLite cluster's state (task definitions,
tasks, services, schedules) in its own store, places tasks on the hosts
whose agents have joined, keeps services at their desired count and
serves Amazon ECS's API over gRPC with TLS.
.
A join token for a host: sudo ecslite-coordinator token create"
done

if [ "$lint" = yes ] && command -v lintian >/dev/null; then
  lintian "$out"/*_"${version}"_*.deb
fi
