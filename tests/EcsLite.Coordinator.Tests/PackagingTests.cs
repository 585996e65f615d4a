using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;
using Grpc.Net.Client;

namespace EcsLite.Coordinator.Tests;

/// <summary>What an operator runs: the systemd unit and install.sh.</summary>
public class PackagingTests
{
    [Theory]
    [InlineData("coordinator")]
    [InlineData("agent")]
    public async Task The_units_pass_systemd_analyze_verify(string name)
    {
        var directory = CoordinatorProcess.TempDirectory("ecslite-unit");
        var apphost = Path.ChangeExtension(name == "agent" ? RepoPaths.AgentDll : RepoPaths.CoordinatorDll, null);
        var unit = File.ReadAllText(Path.Combine(RepoPaths.Root, "packaging", "systemd", $"ecslite-{name}.service"))
            .Replace($"/opt/ecslite/{name}/ecslite-{name}", apphost, StringComparison.Ordinal);
        var path = Path.Combine(directory, $"ecslite-{name}.service");
        await File.WriteAllTextAsync(path, unit);

        var (code, output) = await ProcessRunner.RunAsync("systemd-analyze", ["verify", path]);

        Assert.True(code == 0, output);
        Assert.DoesNotContain($"ecslite-{name}.service:", output, StringComparison.Ordinal);
        Assert.Contains("Type=notify", unit, StringComparison.Ordinal);
        Assert.Contains($"WorkingDirectory=/var/lib/ecslite/{name}", unit, StringComparison.Ordinal);
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task Install_script_brings_up_a_single_host_cluster_and_stops_it()
    {
        var root = CoordinatorProcess.TempDirectory("ecslite-install");
        var port = CoordinatorProcess.FreePort();
        var environment = new Dictionary<string, string>
        {
            ["ECSLITE_PREFIX"] = Path.Combine(root, "opt"),
            ["ECSLITE_ETC"] = Path.Combine(root, "etc"),
            ["ECSLITE_DATA_DIR"] = Path.Combine(root, "data"),
            ["ECSLITE_AGENT_DIR"] = Path.Combine(root, "agent"),
            ["ECSLITE_RUN_DIR"] = Path.Combine(root, "run"),
            ["ECSLITE_ADMIN_SOCKET"] = Path.Combine(root, "run", "coordinator.sock"),
            ["ECSLITE_LISTEN"] = $"127.0.0.1:{port}",
            ["ECSLITE_SYSTEMD"] = "no",
        };
        var script = Path.Combine(RepoPaths.Root, "install.sh");
        try
        {
            var (code, output) = await ProcessRunner.RunAsync(script, [], environment);
            Assert.True(code == 0, output + Logs(Path.Combine(root, "run"))); // the directory is deleted below
            Assert.Contains($"serving on 127.0.0.1:{port}", output, StringComparison.Ordinal);
            Assert.Contains("agent        joined as arn:aws:ecs:local:000000000000:container-instance/default/", output, StringComparison.Ordinal);
            Assert.Contains("grpcurl -plaintext", output, StringComparison.Ordinal);

            // The agent it installed is the NativeAOT executable (.ci/run provides clang and lld): no assemblies beside it.
            var agentFiles = Directory.GetFiles(Path.Combine(root, "opt", "agent")).Select(Path.GetFileName).ToList();
            Assert.Equal(["ecslite-agent"], agentFiles);
            Assert.Equal("\u007fELF"u8.ToArray(), File.ReadAllBytes(Path.Combine(root, "opt", "agent", "ecslite-agent"))[..4]);

            Assert.Contains($"ECS=\"-unix {Path.Combine(root, "run", "coordinator.sock")}\"", output, StringComparison.Ordinal);
            var key = CoordinatorProcess.ReadCredentials(Path.Combine(root, "data", "admin-credentials"));
            Assert.Contains($"grpcurl -cacert {Path.Combine(root, "etc", "ca.crt")}", output, StringComparison.Ordinal);
            using var channel = CoordinatorProcess.AuthenticatedChannel($"https://127.0.0.1:{port}", () => key, Path.Combine(root, "etc", "ca.crt"));
            var ecs = new Ecs.EcsClient(channel);
            var example = JsonParser.Default.Parse<RegisterTaskDefinitionRequest>(File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")));
            var registered = await ecs.RegisterTaskDefinitionAsync(example);
            Assert.Equal(1, registered.TaskDefinition.Revision);
            Assert.True(File.Exists(Path.Combine(root, "data", "cluster-store.db")));
            Assert.Contains("\"Listen\": \"127.0.0.1:" + port, File.ReadAllText(Path.Combine(root, "etc", "coordinator.json")), StringComparison.Ordinal);
            var instances = await ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest
            {
                ContainerInstances = { (await ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest())).ContainerInstanceArns },
            });
            Assert.True(Assert.Single(instances.ContainerInstances).AgentConnected);

            // The local agent joined with a one-use token made for it, spent and gone from its settings.
            var agentConf = Path.Combine(root, "etc", "agent.conf");
            Assert.DoesNotContain("ECSLITE_JOIN_TOKEN", File.ReadAllText(agentConf), StringComparison.Ordinal);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(agentConf));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(root, "agent", "tls", "agent.key")));
            var tokens = await new Activations.ActivationsClient(channel).DescribeActivationsAsync(new DescribeActivationsRequest());
            Assert.Equal(1, Assert.Single(tokens.ActivationList).RegistrationsCount);
            var pids = new[] { "coordinator", "agent" }.Select(n => File.ReadAllText(Path.Combine(root, "run", $"{n}.pid")).Trim()).ToList();

            var (stopCode, stopOutput) = await ProcessRunner.RunAsync(script, ["stop"], environment);
            Assert.True(stopCode == 0, stopOutput);
            Assert.All(pids, pid => Assert.False(Directory.Exists($"/proc/{pid}"), $"process {pid} is still running after install.sh stop"));
            Assert.Contains("Stopped; all acknowledged writes", File.ReadAllText(Path.Combine(root, "run", "coordinator.log")), StringComparison.Ordinal);
        }
        finally
        {
            await ProcessRunner.RunAsync(script, ["uninstall"], environment);
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Install_script_joins_another_host_to_a_coordinator_elsewhere_with_a_token()
    {
        // The coordinator in one network namespace, the joining host in another, linked as two machines.
        using var network = new NetworkNamespaces();
        var (host, hub) = network.AddHost("joiner");
        const int port = 7430;
        await using var coordinator = await CoordinatorProcess.StartListeningAsync(null, $"0.0.0.0:{port}", $"https://{network.HubAddressFromRoot}:{port}", NetworkNamespaces.Exec(network.Hub));
        var token = (await new Activations.ActivationsClient(coordinator.Channel).CreateActivationAsync(new CreateActivationRequest { Description = "the joiner" })).JoinToken;
        var root = CoordinatorProcess.TempDirectory("ecslite-join");
        var environment = new Dictionary<string, string>
        {
            ["ECSLITE_PREFIX"] = Path.Combine(root, "opt"),
            ["ECSLITE_ETC"] = Path.Combine(root, "etc"),
            ["ECSLITE_AGENT_DIR"] = Path.Combine(root, "agent"),
            ["ECSLITE_RUN_DIR"] = Path.Combine(root, "run"),
            ["ECSLITE_SYSTEMD"] = "no",
            ["ECSLITE_COORDINATOR"] = $"https://{hub}:{port}",
        };
        var script = Path.Combine(RepoPaths.Root, "install.sh");
        try
        {
            // Without a token: refused at once, before anything is built or installed.
            var (refusedCode, refused) = await ProcessRunner.RunAsync("ip", ["netns", "exec", host, script, "agent"], environment);
            Assert.NotEqual(0, refusedCode);
            Assert.Contains("this host has not joined yet", refused, StringComparison.Ordinal);
            Assert.False(Directory.Exists(Path.Combine(root, "opt")));

            environment["ECSLITE_JOIN_TOKEN"] = token;
            var (code, output) = await ProcessRunner.RunAsync("ip", ["netns", "exec", host, script, "agent"], environment);
            Assert.True(code == 0, output);
            Assert.Contains("This host joined the cluster as arn:aws:ecs:local:000000000000:container-instance/default/", output, StringComparison.Ordinal);
            var instances = await coordinator.Ecs.DescribeContainerInstancesAsync(new DescribeContainerInstancesRequest
            {
                ContainerInstances = { (await coordinator.Ecs.ListContainerInstancesAsync(new ListContainerInstancesRequest())).ContainerInstanceArns },
            });
            Assert.True(Assert.Single(instances.ContainerInstances).AgentConnected);
            Assert.DoesNotContain("ECSLITE_JOIN_TOKEN", File.ReadAllText(Path.Combine(root, "etc", "agent.conf")), StringComparison.Ordinal);
            var tokens = await new Activations.ActivationsClient(coordinator.Channel).DescribeActivationsAsync(new DescribeActivationsRequest());
            Assert.Equal(1, tokens.ActivationList.Single(a => a.Description == "the joiner").RegistrationsCount);
        }
        finally
        {
            await ProcessRunner.RunAsync(script, ["uninstall"], environment);
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>The logs install.sh's processes wrote, for a failure's message.</summary>
    private static string Logs(string runDirectory) =>
        string.Concat(Directory.Exists(runDirectory) ? Directory.GetFiles(runDirectory, "*.log").Order().Select(f => $"\n--- {f}\n{File.ReadAllText(f)}") : []);
}
