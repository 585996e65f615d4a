#!/usr/bin/env python3
"""Records which managed functions the NativeAOT agent runs once it has settled, and writes them as the
code layout of the next build: agent/EcsLite.Agent/hot-methods.txt, the agent's IlcOrderFile.

Why: after start-up the agent hands its code pages back (MADV_PAGEOUT) and keeps only what it touches
again. The kernel maps file pages in folios of up to 64 KB, so the few hundred functions an idle agent
runs, scattered over 7 MB of code, kept most of it resident. Laid out side by side they fit in a few
folios (docs/benchmarks.md, "Hot code laid out together").

How: a uprobe on the entry of every function of the build (tracefs), the agent-idle and agent-tasks
benchmarks run against that build, and each function hit after the agent's page-out is kept, in three
groups: what the idle agent runs again and again, what it runs once just after the page-out, and what
running tasks adds. Run as root on a build with symbols (packaging/build-agent.sh leaves
ecslite-agent.dbg beside the executable); it takes about a quarter of an hour, most of it switching
the probes off and removing them.
Usage: packaging/profile-agent.py [artifacts/agent/linux-x64/ecslite-agent]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACING = '/sys/kernel/tracing'
GROUP = 'ecslite_profile'
PAGE_OUT = 'ecslite_agent_EcsLite_Agent_AgentService__PageOutStartupCode'
SETTLED = 20.0  # seconds after the page-out from which a function counts as run again and again


def sections(binary):
    """ELF section name -> (address, file offset, size)."""
    out = subprocess.run(['readelf', '-SW', binary], capture_output=True, text=True, check=True).stdout
    found = {}
    for m in re.finditer(r'\]\s+(\S+)\s+\S+\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)', out):
        found[m.group(1)] = tuple(int(m.group(g), 16) for g in (2, 3, 4))
    return found


def functions(symbols, code):
    """(file offset, name) of each function in the code section (address, file offset, size), one per address."""
    out = subprocess.run(['nm', '--defined-only', symbols], capture_output=True, text=True, check=True).stdout
    seen = {}
    for line in out.splitlines():
        parts = line.split(' ', 2)
        if len(parts) != 3 or parts[1] not in ('t', 'T'):
            continue
        address = int(parts[0], 16)
        start, offset, size = code
        if start <= address < start + size:
            seen.setdefault(address, (address - start + offset, parts[2]))
    return sorted(seen.values())


def write_lines(path, lines):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        for line in lines:
            os.write(fd, (line + '\n').encode())
    finally:
        os.close(fd)


def running(agent):
    """Whether a process runs the given executable."""
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if os.readlink(f'/proc/{pid}/exe') == agent:
                return True
        except OSError:
            pass
    return False


def traced(agent, benchmark):
    """Runs one benchmark, the probes on from 3 s after the agent started (it has joined by then, and
    hands start-up's pages back 10 s after joining); returns [(seconds, probe index)] in order."""
    raw = tempfile.NamedTemporaryFile(prefix='ecslite-profile-', suffix='.trace', delete=False).name
    with open(f'{TRACING}/trace', 'w') as f:
        f.write('')
    reader = subprocess.Popen(['cat', f'{TRACING}/trace_pipe'], stdout=open(raw, 'w'))
    run = subprocess.Popen(['dotnet', 'run', '-c', 'Release', '--no-build', '--project', os.path.join(ROOT, 'tests', 'EcsLite.Benchmarks'),
                            '--', *benchmark, '--agent', agent], cwd=ROOT)
    try:
        while not running(agent) and run.poll() is None:
            time.sleep(0.1)
        time.sleep(3)
        with open(f'{TRACING}/events/{GROUP}/enable', 'w') as f:
            f.write('1')
        if run.wait() != 0:
            sys.exit(f'profile-agent: the benchmark {benchmark[0]} failed')
    finally:
        with open(f'{TRACING}/events/{GROUP}/enable', 'w') as f:
            f.write('0')
        time.sleep(1)
        reader.terminate()
    events = []
    with open(raw) as f:
        for line in f:
            fields = line.split()  # TASK-PID [CPU] FLAGS SECONDS: fN: (ADDRESS)
            if len(fields) >= 3 and fields[-2].startswith('f') and fields[-3].endswith(':'):
                events.append((float(fields[-3][:-1]), int(fields[-2][1:-1])))
    os.unlink(raw)
    return events


def after_page_out(events, page_out):
    """Probe index -> its last hit, in seconds after the agent's page-out, of each function hit after it."""
    start = next(t for t, i in events if i == page_out)
    return {i: t - start for t, i in events if t > start}  # events are in time order: the last hit stays


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'artifacts/agent/linux-x64/ecslite-agent'))
    symbols = build + '.dbg'
    if not os.path.exists(symbols):
        sys.exit(f'profile-agent: {symbols} is missing (packaging/build-agent.sh writes it)')
    if not os.path.isdir(f'{TRACING}/events'):
        subprocess.run(['mount', '-t', 'tracefs', 'nodev', TRACING], check=True)

    # The probes are on the file, so the agent runs from a copy only this profile uses.
    work = tempfile.mkdtemp(prefix='ecslite-profile-')
    agent = os.path.join(work, 'ecslite-agent')
    shutil.copy(build, agent)
    subprocess.run(['dotnet', 'build', os.path.join(ROOT, 'tests', 'EcsLite.Benchmarks'), '-c', 'Release', '-nologo', '-v', 'quiet'], check=True)
    found = functions(symbols, sections(build)['__managedcode'])
    page_out = next(i for i, (_, name) in enumerate(found) if name == PAGE_OUT)
    print(f'{len(found)} functions; adding their probes', flush=True)
    write_lines(f'{TRACING}/uprobe_events', [f'p:{GROUP}/f{i} {agent}:0x{offset:x}' for i, (offset, _) in enumerate(found)])
    try:
        idle = after_page_out(traced(agent, ['agent-idle', '--warmup', '60', '--seconds', '60']), page_out)
        tasks = after_page_out(traced(agent, ['agent-tasks', '--rounds', '10', '--settle', '20']), page_out)
    finally:
        print('removing the probes (a few minutes)', flush=True)
        with open(f'{TRACING}/uprobe_events', 'w') as f:
            f.write('')  # truncating removes them all
        shutil.rmtree(work)

    steady = {i for i, last in idle.items() if last > SETTLED}
    groups = [steady, set(idle) - steady, set(tasks) - set(idle)]
    names = [found[i][1] for group in groups for i in sorted(group)]
    with open(os.path.join(ROOT, 'agent', 'EcsLite.Agent', 'hot-methods.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    print(f'agent/EcsLite.Agent/hot-methods.txt: {len(names)} functions')
    print('groups (idle, once after the page-out, tasks):', [len(g) for g in groups])


if __name__ == '__main__':
    main()
