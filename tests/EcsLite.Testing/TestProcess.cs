using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace EcsLite.Testing;

/// <summary>A program a test starts and controls: its output is kept, and it can be signalled, stopped or killed.</summary>
public sealed partial class TestProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private readonly Process _process;

    private TestProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts <paramref name="command"/>, optionally inside a wrapper such as ["ip", "netns", "exec", "ns1"].</summary>
    public static TestProcess Start(IReadOnlyList<string> command, IDictionary<string, string>? environment = null, IReadOnlyList<string>? wrapper = null, string? workingDirectory = null)
    {
        var full = (wrapper ?? []).Concat(command).ToList();
        var info = new ProcessStartInfo(full[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null)
        {
            info.WorkingDirectory = workingDirectory;
        }
        foreach (var arg in full.Skip(1))
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {full[0]}");
        var started = new TestProcess(process);
        process.OutputDataReceived += (_, e) => started.Append(e.Data);
        process.ErrorDataReceived += (_, e) => started.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return started;
    }

    /// <summary>Waits until the output contains <paramref name="text"/>; fails at once if the process ends without it.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited)
            {
                _process.WaitForExit(); // and for the last of its output
                if (Output.Contains(text, StringComparison.Ordinal))
                {
                    return;
                }

                throw new InvalidOperationException($"the process exited ({_process.ExitCode}) before '{text}' appeared; its output:\n{Output}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"'{text}' did not appear within {timeout}; output so far:\n{Output}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Waits for the process to end, killing it (and failing) if it takes longer than <paramref name="timeout"/>.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            await KillAsync();
            throw new TimeoutException($"the process did not finish within {timeout}; output:\n{Output}");
        }

        return _process.ExitCode;
    }

    public void Signal(int signal) => _ = SendSignal(_process.Id, signal);

    /// <summary>
    /// SIGKILL: no chance to clean up, as in a power cut of the process. Its children go too (a wrapper
    /// such as a shell would otherwise leave them running, holding the output pipes open).
    /// </summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await _process.WaitForExitAsync(timeout.Token);
    }

    /// <summary>SIGTERM, then wait for the exit; returns the exit code.</summary>
    public Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            Signal(15);
        }

        return WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(15));
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            Signal(18); // SIGCONT, in case a test stopped it
        }

        await KillAsync();
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
