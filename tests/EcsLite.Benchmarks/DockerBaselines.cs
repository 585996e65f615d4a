using System.Diagnostics;
using Docker.DotNet;
using Docker.DotNet.Models;
using EcsLite.Testing;

namespace EcsLite.Benchmarks;

/// <summary>
/// The same container as the benchmarks' task (the local busybox, 16 MiB, sleeping) started without
/// EcsLite, to measure against in the same run: through Docker's API (create + start) and with `docker run -d`.
/// </summary>
internal sealed class DockerBaselines : IDisposable
{
    private readonly DockerClient _docker = new DockerClientConfiguration(new Uri("unix:///var/run/docker.sock")).CreateClient();

    public async Task<double> ApiOnceAsync()
    {
        var start = Stopwatch.GetTimestamp();
        var created = await _docker.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = LocalImages.Busybox,
            Cmd = ["sleep", "600"],
            HostConfig = new HostConfig { Memory = 16L << 20 },
        });
        await _docker.Containers.StartContainerAsync(created.ID, new ContainerStartParameters());
        var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        await _docker.Containers.RemoveContainerAsync(created.ID, new ContainerRemoveParameters { Force = true });
        return elapsed;
    }

    public static async Task<double> CliOnceAsync()
    {
        var start = Stopwatch.GetTimestamp();
        var (code, output) = await ProcessRunner.RunAsync("docker", ["run", "-d", "--memory", "16m", LocalImages.Busybox, "sleep", "600"]);
        var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (code != 0)
        {
            throw new InvalidOperationException(output);
        }

        await ProcessRunner.RunAsync("docker", ["rm", "-f", output.Trim()]);
        return elapsed;
    }

    /// <summary>Waits until an agent has stopped and removed all its containers, so a run leaves none behind.</summary>
    public static Task NoContainersLeftAsync(string containerInstanceArn) => Eventually.HoldsAsync(
        async () => (await ProcessRunner.RunAsync("docker", ["ps", "-aq", "--filter", $"label=ecslite.container-instance-arn={containerInstanceArn}"])).Output.Trim().Length == 0,
        TimeSpan.FromSeconds(60), "the agent's containers stopped and cleaned up");

    public static string Figures(List<double> times)
    {
        var sorted = times.Order().ToList();
        return $"median {sorted[sorted.Count / 2]:N1} ms, p90 {sorted[(int)(sorted.Count * 0.9)]:N1} ms";
    }

    public static double Median(List<double> times) => times.Order().ElementAt(times.Count / 2);

    public void Dispose() => _docker.Dispose();
}
