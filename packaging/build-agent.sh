#!/usr/bin/env bash
# Builds ecslite-agent as a NativeAOT executable: one file, no .NET runtime needed on the host, and
# about two thirds of the memory of the JIT build when idle (docs/benchmarks.md).
# For this machine's architecture it needs clang, lld and zlib1g-dev; for arm64 on an x86_64 machine
# (a cross build) also Debian's aarch64 cross toolchain, whose libc is the sysroot clang links against:
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install clang lld zlib1g-dev binutils-aarch64-linux-gnu gcc-aarch64-linux-gnu zlib1g-dev:arm64
# Usage: packaging/build-agent.sh [x64|arm64]   -> artifacts/agent/linux-ARCH/ecslite-agent
set -euo pipefail
cd "$(dirname "$0")/.."
case "$(uname -m)" in
  x86_64) native=x64 ;;
  aarch64) native=arm64 ;;
  *) echo "build-agent.sh: no NativeAOT build on $(uname -m)" >&2; exit 1 ;;
esac
arch=${1:-$native}
tools=(clang ld.lld)
cross=()
case "$arch" in
  "$native") ;;
  arm64) tools+=(aarch64-linux-gnu-objcopy); cross=(-p:LinkerFlavor=lld -p:ObjCopyName=aarch64-linux-gnu-objcopy) ;;
  x64) tools+=(x86_64-linux-gnu-objcopy); cross=(-p:LinkerFlavor=lld -p:ObjCopyName=x86_64-linux-gnu-objcopy) ;;
  *) echo "build-agent.sh: unknown architecture '$arch' (x64 or arm64)" >&2; exit 1 ;;
esac
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "build-agent.sh: $tool is missing (see the top of this script for the packages)" >&2; exit 1; }
done
out="artifacts/agent/linux-$arch"
dotnet publish agent/EcsLite.Agent -c Release -r "linux-$arch" -nologo -v quiet \
  "${cross[@]}" -o "$out"
rm -f "$out"/*.pdb
echo "$out/ecslite-agent"
