namespace EcsLite.Testing;

/// <summary>
/// A Docker engine of the test's own: a second dockerd with its own socket, data and state directories,
/// in a network namespace of its own (so its docker0 bridge and iptables rules touch nothing else), that
/// the test may stop and start again under an agent without disturbing the machine's engine or other
/// tests. nsenter joins only the network namespace: `ip netns exec` would remount /sys, hiding the
/// cgroup file systems dockerd needs.
/// </summary>
public sealed class PrivateEngine : IAsyncDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ecslite-engine-").FullName;
    private readonly string _namespace = $"eleng{Environment.ProcessId % 10000}{Random.Shared.Next(100, 999)}";
    private TestProcess? _dockerd;

    private PrivateEngine()
    {
    }

    /// <summary>DOCKER_HOST for the engine's clients.</summary>
    public string Endpoint => $"unix://{Socket}";

    private string Socket => Path.Combine(_root, "docker.sock");

    public static async Task<PrivateEngine> StartAsync()
    {
        var engine = new PrivateEngine();
        await ProcessRunner.RunAsync("ip", ["netns", "add", engine._namespace]);
        await ProcessRunner.RunAsync("ip", ["-n", engine._namespace, "link", "set", "lo", "up"]);
        await engine.StartAgainAsync();

        // The test images, imported into this engine too.
        var (code, output) = await ProcessRunner.RunAsync("sh", [Path.Combine(AppContext.BaseDirectory, "images", "build-local-images.sh")],
            new Dictionary<string, string> { ["DOCKER_HOST"] = engine.Endpoint }, timeoutSeconds: 120);
        if (code != 0)
        {
            throw new InvalidOperationException($"importing the test images into the private engine failed: {output}");
        }

        return engine;
    }

    /// <summary>Starts dockerd (again) and waits until it answers.</summary>
    public async Task StartAgainAsync()
    {
        _dockerd = TestProcess.Start(["nsenter", $"--net=/var/run/netns/{_namespace}", "dockerd",
            "--host", Endpoint, "--data-root", Path.Combine(_root, "data"), "--exec-root", Path.Combine(_root, "exec"),
            "--pidfile", Path.Combine(_root, "docker.pid")]);
        await Eventually.HoldsAsync(async () => (await DockerAsync("version")).ExitCode == 0, TimeSpan.FromSeconds(60),
            "the private Docker engine answering", TimeSpan.FromMilliseconds(200));
    }

    /// <summary>Stops dockerd as `systemctl stop docker` would (SIGTERM): it stops its containers and exits.</summary>
    public async Task StopAsync()
    {
        if (_dockerd is { } dockerd)
        {
            await dockerd.StopAsync(TimeSpan.FromSeconds(60));
            await dockerd.DisposeAsync();
            _dockerd = null;
        }
    }

    /// <summary>Runs the docker command line against this engine.</summary>
    public Task<(int ExitCode, string Output)> DockerAsync(params string[] args) =>
        ProcessRunner.RunAsync("docker", args, new Dictionary<string, string> { ["DOCKER_HOST"] = Endpoint });

    public async ValueTask DisposeAsync()
    {
        if (_dockerd is not null)
        {
            var (_, ids) = await DockerAsync("ps", "-aq");
            foreach (var id in ids.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                await DockerAsync("rm", "-f", id);
            }

            await StopAsync();
        }

        await ProcessRunner.RunAsync("ip", ["netns", "del", _namespace]);
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // a mount dockerd left behind: the temporary directory stays
        }
    }
}
