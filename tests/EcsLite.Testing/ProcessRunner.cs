namespace EcsLite.Testing;

/// <summary>Runs a program to its end, bounded in time, and returns its exit code and everything it printed.</summary>
public static class ProcessRunner
{
    public static async Task<(int ExitCode, string Output)> RunAsync(
        string file, IEnumerable<string> args, IDictionary<string, string>? environment = null, int timeoutSeconds = 300)
    {
        await using var process = TestProcess.Start([file, .. args], environment);
        var code = await process.WaitForExitAsync(TimeSpan.FromSeconds(timeoutSeconds));
        return (code, process.Output);
    }

    /// <summary>Removes every container the agent of <paramref name="containerInstanceArns"/> made, running or not (a test's clean-up).</summary>
    public static async Task RemoveContainersAsync(IEnumerable<string> containerInstanceArns)
    {
        foreach (var instance in containerInstanceArns)
        {
            var (_, ids) = await RunAsync("docker", ["ps", "-aq", "--filter", $"label=ecslite.container-instance-arn={instance}"]);
            foreach (var id in ids.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                await RunAsync("docker", ["rm", "-f", id]);
            }
        }
    }
}
