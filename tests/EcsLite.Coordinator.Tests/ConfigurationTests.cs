using System.Diagnostics;
using EcsLite.Api.V1;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>The coordinator's settings from the command line, the environment and a config file.</summary>
public class ConfigurationTests
{
    private static async Task<(int ExitCode, string Output)> RunAsync(IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(RepoPaths.CoordinatorDll);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output + await error);
    }

    [Fact]
    public async Task Help_lists_every_setting()
    {
        var (code, output) = await RunAsync(["--help"]);
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
        var (code, output) = await RunAsync([option, value, "--data-dir", CoordinatorProcess.TempDirectory("ecslite-config")]);
        Assert.Equal(2, code);
        Assert.Contains("invalid settings", output, StringComparison.Ordinal);
        Assert.Contains(value, output, StringComparison.Ordinal);
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
