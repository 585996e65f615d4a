using System.Text.Json;

namespace EcsLite.Testing;

/// <summary>The real ecslite-agent as its own process, with its own data directory, optionally inside a network namespace.</summary>
public sealed class AgentProcess : IAsyncDisposable
{
    private readonly IReadOnlyList<string> _coordinators;
    private readonly IDictionary<string, string> _environment;
    private readonly IReadOnlyList<string>? _wrapper;
    private readonly string[] _extraArgs;

    /// <summary>The build to run: a .dll runs under dotnet, anything else is an executable (the NativeAOT agent).</summary>
    private string _executable = "";

    private AgentProcess(IReadOnlyList<string> coordinators, string dataDir, IDictionary<string, string> environment, IReadOnlyList<string>? wrapper, string[] extraArgs)
    {
        _coordinators = coordinators;
        DataDir = dataDir;
        _environment = environment;
        _wrapper = wrapper;
        _extraArgs = extraArgs;
    }

    public string DataDir { get; }

    /// <summary>Where the agent serves its metrics (ECSLITE_METRICS_LISTEN), e.g. http://127.0.0.1:40123/metrics; null when off.</summary>
    public string? MetricsUrl => _environment["ECSLITE_METRICS_LISTEN"] is var listen && listen != "off" ? $"http://{listen}/metrics" : null;

    public TestProcess Process { get; private set; } = null!;

    public string Output => Process.Output;

    /// <summary>The instance ARN the agent saved after its welcome, if any.</summary>
    public string? ContainerInstanceArn
    {
        get
        {
            var path = Path.Combine(DataDir, "instance.json");
            return File.Exists(path) ? JsonDocument.Parse(File.ReadAllText(path)).RootElement.GetProperty("ContainerInstanceArn").GetString() : null;
        }
    }

    /// <summary>
    /// Starts an agent that joins <paramref name="coordinator"/> with <paramref name="joinToken"/> (given as
    /// ECSLITE_JOIN_TOKEN in its environment, as agent.conf would; null: none, as a host that was never given one).
    /// </summary>
    public static AgentProcess Start(string coordinator, string? joinToken, string? dataDir = null, IDictionary<string, string>? environment = null, IReadOnlyList<string>? wrapper = null, params string[] extraArgs) =>
        Start([coordinator], joinToken, dataDir, environment, wrapper, extraArgs);

    public static AgentProcess Start(IReadOnlyList<string> coordinators, string? joinToken, string? dataDir, IDictionary<string, string>? environment, IReadOnlyList<string>? wrapper, params string[] extraArgs) =>
        Launch(RepoPaths.AgentDll, coordinators, joinToken, dataDir, environment, wrapper, extraArgs);

    /// <summary>
    /// Starts a given build of the agent (e.g. <see cref="RepoPaths.NativeAgent"/>; a .dll runs under dotnet),
    /// optionally through a wrapper (e.g. qemu-user for another architecture's build).
    /// </summary>
    public static AgentProcess StartBuild(string executable, string coordinator, string? joinToken, IDictionary<string, string>? environment = null, IReadOnlyList<string>? wrapper = null) =>
        Launch(executable, [coordinator], joinToken, null, environment, wrapper, []);

    private static AgentProcess Launch(string executable, IReadOnlyList<string> coordinators, string? joinToken, string? dataDir, IDictionary<string, string>? environment, IReadOnlyList<string>? wrapper, string[] extraArgs)
    {
        var withToken = new Dictionary<string, string>(environment ?? new Dictionary<string, string>());
        // Metrics on, as by default, but each agent on a port of its own (many share this host's loopback).
        withToken.TryAdd("ECSLITE_METRICS_LISTEN", $"127.0.0.1:{CoordinatorProcess.FreePort()}");
        if (joinToken is not null)
        {
            withToken["ECSLITE_JOIN_TOKEN"] = joinToken;
        }

        var agent = new AgentProcess(coordinators, dataDir ?? CoordinatorProcess.TempDirectory("ecslite-agent"), withToken, wrapper, extraArgs) { _executable = executable };
        agent.StartAgain();
        return agent;
    }

    public void StartAgain()
    {
        List<string> command = _executable.EndsWith(".dll", StringComparison.Ordinal) ? ["dotnet", _executable] : [_executable];
        command.AddRange(["--data-dir", DataDir]);
        foreach (var coordinator in _coordinators)
        {
            command.AddRange(["--coordinator", coordinator]);
        }

        command.AddRange(_extraArgs);
        Process = TestProcess.Start(command, _environment, _wrapper);
    }

    /// <summary>Waits until the agent reports that a coordinator welcomed it.</summary>
    public Task WaitJoinedAsync(TimeSpan? timeout = null) => Process.WaitForOutputAsync("Joined ", timeout ?? TimeSpan.FromSeconds(30));

    public async ValueTask DisposeAsync()
    {
        await Process.DisposeAsync();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
