using System.Text.RegularExpressions;
using EcsLite.Testing;

namespace EcsLite.Coordinator.Tests;

/// <summary>
/// The .deb packages packaging/build-debs.sh makes (test.sh builds them for amd64 and arm64): lintian
/// finds no error in any; and on this machine, restored afterwards, those of its architecture install
/// (unit enabled, programs that run: the installed agent joins the installed coordinator), upgrade from
/// the build before (settings an administrator changed and the agent's data kept), remove (data kept)
/// and purge (nothing left); and install.sh installs them in place of a build from source.
/// </summary>
[Collection(nameof(DebPackageTests))]
[CollectionDefinition(nameof(DebPackageTests), DisableParallelization = true)]
public sealed class DebPackageTests
{
    private static readonly string[] Packages = ["ecslite-agent", "ecslite-coordinator"];
    private static readonly string Version = Regex.Match(File.ReadAllText(Path.Combine(RepoPaths.Root, "Directory.Build.props")), "<Version>(.*)</Version>").Groups[1].Value;

    private static string Deb(string name, string arch) => Path.Combine(RepoPaths.Root, "artifacts", "deb", $"{name}_{Version}_{arch}.deb");

    [Theory]
    [InlineData("amd64")]
    [InlineData("arm64")]
    public async Task Lintian_finds_no_error_in_the_packages(string arch)
    {
        var debs = Packages.Select(p => Deb(p, arch)).ToArray();
        Assert.All(debs, deb => Assert.True(File.Exists(deb), $"{deb} is missing: run packaging/build-debs.sh amd64 arm64 (test.sh does)"));

        var (code, output) = await ProcessRunner.RunAsync("lintian", [.. debs]);

        Assert.DoesNotContain("\nE: ", "\n" + output, StringComparison.Ordinal);
        Assert.True(code == 0, output);
        var (_, control) = await ProcessRunner.RunAsync("dpkg-deb", ["--field", debs[0], "Depends", "Architecture"]);
        Assert.Contains("docker.io | docker-ce", control, StringComparison.Ordinal);
        Assert.Contains($"Architecture: {arch}", control, StringComparison.Ordinal);
        var (_, contents) = await ProcessRunner.RunAsync("dpkg-deb", ["--contents", debs[0]]);
        Assert.Contains("./lib/systemd/system/ecslite-agent.service", contents, StringComparison.Ordinal);

        // The programs are built for the package's architecture (ELF e_machine: 0x3e x86-64, 0xb7 AArch64).
        var tree = CoordinatorProcess.TempDirectory("ecslite-deb");
        try
        {
            foreach (var deb in debs)
            {
                var (extracted, said) = await ProcessRunner.RunAsync("dpkg-deb", ["--extract", deb, tree]);
                Assert.True(extracted == 0, said);
            }

            foreach (var program in new[] { "agent/ecslite-agent", "coordinator/ecslite-coordinator" })
            {
                Assert.Equal(arch == "arm64" ? 0xb7 : 0x3e, File.ReadAllBytes(Path.Combine(tree, "usr/lib/ecslite", program))[18]);
            }
        }
        finally
        {
            Directory.Delete(tree, recursive: true);
        }
    }

    [Fact]
    public async Task The_packages_install_upgrade_from_the_build_before_remove_and_purge_cleanly()
    {
        var debs = await ThisArchitectureAsync();
        var work = CoordinatorProcess.TempDirectory("ecslite-deb");
        try
        {
            // The build before: these packages with a lower version (what an upgrade replaces).
            var previous = new List<string>();
            foreach (var deb in debs)
            {
                var tree = Path.Combine(work, Path.GetFileNameWithoutExtension(deb));
                await RunAsync("dpkg-deb", "--raw-extract", deb, tree);
                var control = Path.Combine(tree, "DEBIAN", "control");
                File.WriteAllText(control, Regex.Replace(File.ReadAllText(control), "(?m)^Version: .*$", "Version: 0.0.1~previous"));
                previous.Add(Path.Combine(work, Path.GetFileName(deb).Replace(Version, "0.0.1~previous", StringComparison.Ordinal)));
                await RunAsync("dpkg-deb", "--root-owner-group", "--build", tree, previous[^1]);
            }

            // Install: programs, settings, units (enabled), the agent's data directory.
            await RunAsync(["dpkg", "--install", .. previous]);
            Assert.Equal("0.0.1~previous", await VersionAsync("ecslite-agent"));
            foreach (var name in new[] { "agent", "coordinator" })
            {
                Assert.True(File.Exists($"/lib/systemd/system/ecslite-{name}.service"));
                Assert.True(File.Exists($"/etc/systemd/system/multi-user.target.wants/ecslite-{name}.service"), $"ecslite-{name}.service not enabled");
                Assert.Contains($"ExecStart=/usr/lib/ecslite/{name}/ecslite-{name} ", File.ReadAllText($"/lib/systemd/system/ecslite-{name}.service"), StringComparison.Ordinal);
                var (verified, output) = await ProcessRunner.RunAsync("systemd-analyze", ["verify", $"/lib/systemd/system/ecslite-{name}.service"]);
                Assert.True(verified == 0 && !output.Contains($"ecslite-{name}.service:", StringComparison.Ordinal), output);
            }

            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode("/etc/ecslite/agent.conf"));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode("/var/lib/ecslite/agent"));

            // What was installed runs: the packaged agent joins the packaged coordinator.
            await using (var coordinator = await CoordinatorProcess.StartBuildAsync("/usr/bin/ecslite-coordinator"))
            await using (var agent = AgentProcess.StartBuild("/usr/lib/ecslite/agent/ecslite-agent", coordinator.Address, coordinator.JoinToken))
            {
                await agent.WaitJoinedAsync();
                Assert.StartsWith("arn:aws:ecs:", agent.ContainerInstanceArn, StringComparison.Ordinal);
            }

            // Upgrade: a setting the administrator changed, and the agent's identity, stay.
            File.AppendAllText("/etc/ecslite/agent.conf", "ECS_RESERVED_MEMORY=64\n");
            File.WriteAllText("/var/lib/ecslite/agent/instance.json", "{\"kept\": true}");
            await RunAsync(["dpkg", "--install", "--force-confold", .. debs]);
            Assert.Equal(Version, await VersionAsync("ecslite-agent"));
            Assert.Equal(Version, await VersionAsync("ecslite-coordinator"));
            Assert.Contains("ECS_RESERVED_MEMORY=64", File.ReadAllText("/etc/ecslite/agent.conf"), StringComparison.Ordinal);
            Assert.Equal("{\"kept\": true}", File.ReadAllText("/var/lib/ecslite/agent/instance.json"));

            // Remove: the programs and units go; settings and data stay.
            await RunAsync(["dpkg", "--remove", .. Packages]);
            Assert.False(File.Exists("/usr/lib/ecslite/agent/ecslite-agent"));
            Assert.False(File.Exists("/lib/systemd/system/ecslite-agent.service"));
            Assert.True(File.Exists("/etc/ecslite/agent.conf"));
            Assert.True(File.Exists("/var/lib/ecslite/agent/instance.json"));

            // Purge: nothing is left.
            await RunAsync(["dpkg", "--purge", .. Packages]);
            Assert.False(Directory.Exists("/etc/ecslite"), "/etc/ecslite left after purge");
            Assert.False(Directory.Exists("/var/lib/ecslite"), "/var/lib/ecslite left after purge");
            Assert.False(Directory.Exists("/usr/lib/ecslite"), "/usr/lib/ecslite left after purge");
            Assert.False(File.Exists("/etc/systemd/system/multi-user.target.wants/ecslite-agent.service"), "the enablement left after purge");
            Assert.False(File.Exists("/etc/systemd/system/ecslite-agent.service"), "a mask left after purge");
            foreach (var package in Packages)
            {
                Assert.False(await InstalledAsync(package));
            }
        }
        finally
        {
            await ProcessRunner.RunAsync("dpkg", ["--purge", .. Packages]);
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>
    /// install.sh with ECSLITE_PACKAGES (here without systemd: pid files): it installs the packages of this
    /// architecture and brings up the single-host cluster from them; stop and purge leave nothing.
    /// </summary>
    [Fact]
    public async Task Install_script_installs_the_packages_and_brings_up_a_single_host_cluster()
    {
        var debs = await ThisArchitectureAsync();
        var hadRunDirectory = Directory.Exists("/run/ecslite");
        var run = CoordinatorProcess.TempDirectory("ecslite-deb-run");
        var environment = new Dictionary<string, string>
        {
            ["ECSLITE_PACKAGES"] = Path.GetDirectoryName(debs[0])!,
            ["ECSLITE_SYSTEMD"] = "no",
            ["ECSLITE_RUN_DIR"] = run,
        };
        var script = Path.Combine(RepoPaths.Root, "install.sh");
        try
        {
            var (code, output) = await ProcessRunner.RunAsync(script, [], environment);
            Assert.True(code == 0, output);
            Assert.Contains("installing ecslite-coordinator_", output, StringComparison.Ordinal);
            Assert.Contains("serving on 127.0.0.1:7430", output, StringComparison.Ordinal);
            Assert.Contains("agent        joined as arn:aws:ecs:local:000000000000:container-instance/default/", output, StringComparison.Ordinal);
            Assert.DoesNotContain("building ecslite-", output, StringComparison.Ordinal);
            var agentPid = File.ReadAllText(Path.Combine(run, "agent.pid")).Trim();
            Assert.Equal("/usr/lib/ecslite/agent/ecslite-agent", new FileInfo($"/proc/{agentPid}/exe").LinkTarget);
            Assert.Contains("ECSLITE_COORDINATOR=https://127.0.0.1:7430", File.ReadAllText("/etc/ecslite/agent.conf"), StringComparison.Ordinal);
            Assert.DoesNotMatch("(?m)^ECSLITE_JOIN_TOKEN=", File.ReadAllText("/etc/ecslite/agent.conf")); // spent: the agent has its certificate

            var (stopped, said) = await ProcessRunner.RunAsync(script, ["stop"], environment);
            Assert.True(stopped == 0, said);
            Assert.False(Directory.Exists($"/proc/{agentPid}"), "the agent still runs after install.sh stop");
        }
        finally
        {
            await ProcessRunner.RunAsync(script, ["stop"], environment);
            await ProcessRunner.RunAsync("dpkg", ["--purge", .. Packages]);
            Directory.Delete(run, recursive: true);
            if (!hadRunDirectory && Directory.Exists("/run/ecslite"))
            {
                Directory.Delete("/run/ecslite", recursive: true); // the admin socket's directory, made by the coordinator without systemd
            }
        }

        Assert.False(Directory.Exists("/etc/ecslite") || Directory.Exists("/var/lib/ecslite") || Directory.Exists("/usr/lib/ecslite"), "left after purge");
    }

    /// <summary>
    /// The packages of this machine's architecture, once it is sure none is installed and nothing is where
    /// they go: the tests install and purge them, and must not run over an installation they did not make.
    /// </summary>
    private static async Task<string[]> ThisArchitectureAsync()
    {
        var arch = (await ProcessRunner.RunAsync("dpkg", ["--print-architecture"])).Output.Trim();
        var debs = Packages.Select(p => Deb(p, arch)).ToArray();
        Assert.All(debs, deb => Assert.True(File.Exists(deb), $"{deb} is missing: run packaging/build-debs.sh (test.sh does)"));
        foreach (var package in Packages)
        {
            Assert.False(await InstalledAsync(package), $"{package} is installed on this machine already; this test installs and purges it, so it will not run over an installation of yours");
        }

        string[] places = ["/usr/lib/ecslite", "/etc/ecslite", "/var/lib/ecslite"];
        Assert.False(places.Any(Directory.Exists), $"one of {string.Join(", ", places)} exists: this test would change an installation it did not make");
        return debs;
    }

    private static async Task<bool> InstalledAsync(string package) =>
        (await ProcessRunner.RunAsync("dpkg-query", ["--show", "--showformat=${db:Status-Status}", package])).Output.Trim() == "installed";

    private static async Task<string> VersionAsync(string package) =>
        (await ProcessRunner.RunAsync("dpkg-query", ["--show", "--showformat=${Version}", package])).Output.Trim();

    private static async Task RunAsync(params string[] command)
    {
        var (code, output) = await ProcessRunner.RunAsync(command[0], command[1..]);
        Assert.True(code == 0, $"{string.Join(' ', command)} exited with {code}:\n{output}");
    }
}
