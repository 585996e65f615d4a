#!/usr/bin/env bash
# Builds ecslite-agent as a NativeAOT executable for this machine's architecture: one file, no .NET
# runtime needed on the host, and about half the memory of the JIT build when idle (docs/benchmarks.md).
# Needs clang, lld and zlib1g-dev (Debian's packages). Cross-building for arm64 is not done here yet.
# Usage: packaging/build-agent.sh   -> artifacts/agent/linux-ARCH/ecslite-agent (ARCH x64 or arm64)
set -euo pipefail
cd "$(dirname "$0")/.."
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "build-agent.sh: no NativeAOT build for $(uname -m)" >&2; exit 1 ;;
esac
for tool in clang ld.lld; do
  command -v "$tool" >/dev/null || { echo "build-agent.sh: $tool is missing (apt-get install clang lld zlib1g-dev)" >&2; exit 1; }
done
out="artifacts/agent/linux-$arch"
dotnet publish agent/EcsLite.Agent -c Release -r "linux-$arch" -nologo -v quiet \
  -p:PublishAot=true -p:StripSymbols=true -o "$out"
echo "$out/ecslite-agent"
