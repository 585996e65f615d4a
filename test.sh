#!/usr/bin/env bash
# Runs the whole test suite (every test project in EcsLite.sln) and ends with one line:
#   tests: N passed, N failed[, N skipped]
# Exits non-zero if anything failed, a test project did not report, or no test ran.
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# The solution, the agent as NativeAOT executables for x64 and arm64 (what hosts run; NativeAgentTests
# and Arm64AgentTests drive them), the .deb packages of both (DebPackageTests lints and installs them),
# and the AWS SDK for JavaScript from its lock file (AwsCliTests runs it).
if ! dotnet build EcsLite.sln -c Release -nologo -v quiet || ! packaging/build-agent.sh x64 >/dev/null \
  || ! packaging/build-agent.sh arm64 >/dev/null || ! packaging/build-debs.sh --no-lintian amd64 arm64 >/dev/null \
  || ! npm ci --prefix tests/js --no-audit --no-fund >/dev/null; then
  echo "tests: 0 passed, 1 failed"
  exit 1
fi

log=$(mktemp)
# A test that hangs is ended (and counted as failed) rather than holding CI until its deadline. The test
# projects run one after the other (-m:1): their timing tests (start-up, watchdog gaps, packaging within
# its bound) measured nonsense with another project's clusters saturating the same two cores.
dotnet test EcsLite.sln -c Release --no-build -nologo -m:1 --blame-hang-timeout 8m "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# One summary line per test assembly: "Passed!  - Failed:     0, Passed:   130, Skipped:     0, Total:   130, ..."
sum() { grep -E '^(Passed|Failed)!' "$log" | sed -nE "s/.*$1: *([0-9]+).*/\1/p" | awk '{ s += $1 } END { print s + 0 }'; }
passed=$(sum Passed); failed=$(sum Failed); skipped=$(sum Skipped)
projects=$(find tests -name '*.Tests.csproj' | wc -l)
reported=$(grep -cE '^(Passed|Failed)!' "$log")
rm -f "$log"

if [ "$reported" -lt "$projects" ] && [ "$failed" -eq 0 ]; then
  failed=1  # a test host crashed or a project did not run: count it, never hide it
  echo "only $reported of $projects test projects reported results"
elif [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1  # an aborted run (a hang ended by --blame-hang-timeout) still prints "Passed!" for what finished
  echo "dotnet test exited with $status though no test reported a failure: a test run was aborted"
fi
line="tests: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
