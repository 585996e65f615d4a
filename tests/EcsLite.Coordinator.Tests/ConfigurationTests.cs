using EcsLite.Api.V1;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>The coordinator's settings from the command line, the environment and a config file.</summary>
public class ConfigurationTests
{
    private static Task<(int ExitCode, string Output)> RunAsync(string dll, string[] args) => ProcessRunner.RunAsync("dotnet", [dll, .. args]);

    [Fact]
    public async Task Help_lists_every_setting()
    {
        var (code, output) = await RunAsync(RepoPaths.CoordinatorDll, ["--help"]);
        Assert.Equal(0, code);
        foreach (var option in new[] { "--listen", "--data-dir", "--region", "--account-id", "--config" })
        {
            Assert.Contains(option, output, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("--listen", "nowhere")]
    [InlineData("--account-id", "12")]
    [InlineData("--region", "Not A Region")]
    public async Task Invalid_settings_stop_the_start_with_a_clear_message(string option, string value)
    {
        var (code, output) = await RunAsync(RepoPaths.CoordinatorDll, [option, value, "--data-dir", CoordinatorProcess.TempDirectory("ecslite-config")]);
        Assert.Equal(2, code);
        Assert.Contains("invalid settings", output, StringComparison.Ordinal);
        Assert.Contains(value, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_etcd_store_that_cannot_be_reached_stops_the_start_with_one_clear_line()
    {
        var closed = CoordinatorProcess.FreePort(); // nothing listens there
        var directory = CoordinatorProcess.TempDirectory("ecslite-config");
        var (code, output) = await ProcessRunner.RunAsync("dotnet", [RepoPaths.CoordinatorDll, "--store", $"etcd://127.0.0.1:{closed}/x", "--data-dir", directory,
            "--listen", $"127.0.0.1:{CoordinatorProcess.FreePort()}", "--admin-socket", Path.Combine(directory, "admin.sock")], timeoutSeconds: 120);
        Assert.Equal(1, code);
        Assert.Contains($"Cannot read the cluster store etcd://127.0.0.1:{closed}/x: Unavailable", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public async Task Region_and_account_from_a_config_file_appear_in_ARNs()
    {
        var directory = CoordinatorProcess.TempDirectory("ecslite-config");
        var file = Path.Combine(directory, "coordinator.json");
        await File.WriteAllTextAsync(file, """{ "Region": "eu-home-1", "AccountId": "123456789012" }""");
        await using var coordinator = await CoordinatorProcess.StartAsync(null, "--config", file);

        var cluster = await coordinator.Ecs.CreateClusterAsync(new CreateClusterRequest { ClusterName = "arn-check" });
        Assert.Equal("arn:aws:ecs:eu-home-1:123456789012:cluster/arn-check", cluster.Cluster.ClusterArn);
        Assert.Contains("listening on 127.0.0.1:", coordinator.Output, StringComparison.Ordinal);
        Assert.Contains(coordinator.DataDir, coordinator.Output, StringComparison.Ordinal);
    }
}
