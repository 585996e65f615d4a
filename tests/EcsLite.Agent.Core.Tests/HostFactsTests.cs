namespace EcsLite.Agent.Core.Tests;

public class HostFactsTests
{
    [Fact]
    public void Memory_comes_from_meminfo_minus_the_reserved_part()
    {
        var (total, available) = HostFacts.ParseMemInfo("MemTotal:        3884100 kB\nMemFree:          120000 kB\nMemAvailable:    2048000 kB\n");
        Assert.Equal((3884100L, 2048000L), (total, available));
        var resources = HostFacts.RegisteredResources(4, total, new AgentSettings { ReservedMemoryMiB = 256 });
        Assert.Equal(4096, resources.Single(r => r.Name == "CPU").IntegerValue);
        Assert.Equal((3884100 / 1024) - 256, resources.Single(r => r.Name == "MEMORY").IntegerValue);
        Assert.Equal(["22", "2375", "2376", "51678", "51679", "51680"], resources.Single(r => r.Name == "PORTS").StringSetValue);
        Assert.Equal("STRINGSET", resources.Single(r => r.Name == "PORTS_UDP").Type);
    }

    [Theory]
    [InlineData("0-3", 4)]
    [InlineData("0", 1)]
    [InlineData("0-3,6,8-9\n", 7)]
    public void Online_cpu_lists_are_counted(string list, int count) => Assert.Equal(count, HostFacts.CountCpuList(list));

    [Fact]
    public void Cpu_usage_is_the_busy_share_between_two_samples()
    {
        var before = HostFacts.ParseCpuTimes("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n");
        var after = HostFacts.ParseCpuTimes("cpu  150 0 150 750 150 0 0 0 0 0\n");
        Assert.Equal(50.0, HostFacts.CpuPercent(before, after), 3);
        Assert.Equal(0.0, HostFacts.CpuPercent(after, after));
    }

    [Theory]
    [InlineData("X64", "x86_64")]
    [InlineData("x86_64", "x86_64")]
    [InlineData("Arm64", "arm64")]
    [InlineData("aarch64", "arm64")]
    public void Architectures_use_ECS_words(string machine, string ecs) => Assert.Equal(ecs, HostFacts.CpuArchitecture(machine));

    [Fact]
    public void The_instance_type_is_the_board_or_VM_model()
    {
        Assert.Equal("Raspberry Pi 4 Model B Rev 1.4", HostFacts.InstanceType("Raspberry Pi 4 Model B Rev 1.4\0", "ignored"));
        Assert.Equal("Standard PC (Q35 + ICH9, 2009)", HostFacts.InstanceType(null, "Standard PC (Q35 + ICH9, 2009)\n"));
        Assert.Null(HostFacts.InstanceType(null, "To be filled by O.E.M."));
    }

    [Fact]
    public void Attributes_are_ECS_names_plus_custom_ones_which_win()
    {
        var settings = new AgentSettings { InstanceAttributes = new Dictionary<string, string> { ["stack"] = "prod", ["hostname"] = "alias" } };
        var attributes = HostFacts.Attributes("arm64", "Raspberry Pi 5", "pi-5", settings).ToDictionary(a => a.Name, a => a.Value);
        Assert.Equal("linux", attributes["ecs.os-type"]);
        Assert.Equal("LINUX", attributes["ecs.os-family"]);
        Assert.Equal("arm64", attributes["ecs.cpu-architecture"]);
        Assert.Equal("Raspberry Pi 5", attributes["ecs.instance-type"]);
        Assert.Equal("prod", attributes["stack"]);
        Assert.Equal("alias", attributes["hostname"]);
    }

    [Fact]
    public void With_several_coordinators_the_backoff_grows_once_per_round_of_them()
    {
        Assert.Equal([250, 250, 250, 500, 500, 500, 1000], Enumerable.Range(0, 7).Select(a => Math.Round(Backoff.Delay(a, 0.999999, coordinators: 3).TotalMilliseconds)));
        Assert.Equal(Backoff.Delay(4, 0.5), Backoff.Delay(4, 0.5, coordinators: 1));
    }

    [Fact]
    public void Backoff_grows_exponentially_with_jitter_and_is_capped()
    {
        Assert.InRange(Backoff.Delay(0, 0.0).TotalMilliseconds, 125, 125);
        Assert.InRange(Backoff.Delay(0, 0.999).TotalMilliseconds, 249, 250);
        Assert.InRange(Backoff.Delay(3, 0.5).TotalMilliseconds, 1499, 1501);
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var delay = Backoff.Delay(attempt, Random.Shared.NextDouble());
            Assert.True(delay <= Backoff.Cap && delay >= Backoff.Cap / 2 || attempt < 7);
        }
    }
}

public class HostAccessSettingsTests
{
    private static readonly Dictionary<string, string> None = [];

    private static AgentSettings With(params (string Key, string Value)[] values) =>
        AgentSettings.From(values.ToDictionary(v => v.Key, v => v.Value), None, []);

    [Fact]
    public void By_default_a_host_offers_privileged_containers_and_restricts_no_path()
    {
        var attributes = HostFacts.Attributes("x86_64", null, "h", With());
        Assert.Contains(attributes, a => a.Name == Api.V1.HostAccess.PrivilegedCapability);
        Assert.DoesNotContain(attributes, a => a.Name == Api.V1.HostAccess.AllowedHostPathsAttribute);
    }

    [Fact]
    public void The_settings_show_in_the_attributes()
    {
        var attributes = HostFacts.Attributes("x86_64", null, "h", With(("ECS_DISABLE_PRIVILEGED", "true"), ("ECSLITE_ALLOWED_HOST_PATHS", "/srv, /mnt/media")));
        Assert.DoesNotContain(attributes, a => a.Name == Api.V1.HostAccess.PrivilegedCapability);
        Assert.Equal("/srv,/mnt/media", attributes.Single(a => a.Name == Api.V1.HostAccess.AllowedHostPathsAttribute).Value);
        Assert.Equal("", HostFacts.Attributes("x86_64", null, "h", With(("ECSLITE_ALLOWED_HOST_PATHS", ""))).Single(a => a.Name == Api.V1.HostAccess.AllowedHostPathsAttribute).Value);
    }

    [Theory]
    [InlineData("ECS_DISABLE_PRIVILEGED", "yes", "ECS_DISABLE_PRIVILEGED 'yes' is not true or false")]
    [InlineData("ECSLITE_ALLOWED_HOST_PATHS", "srv", "must be absolute paths")]
    public void Bad_values_are_refused_naming_the_setting(string key, string value, string message)
    {
        var error = Assert.Throws<FormatException>(() => With((key, value)));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_host_refuses_what_its_settings_forbid_and_resolves_paths_before_judging()
    {
        var definition = Google.Protobuf.JsonParser.Default.Parse<Api.V1.TaskDefinition>("""
            { "family": "f", "volumes": [{ "name": "data", "host": { "sourcePath": "/srv/data" } }, { "name": "scratch" }],
              "containerDefinitions": [
                { "name": "ok", "mountPoints": [{ "sourceVolume": "data", "containerPath": "/d" }, { "sourceVolume": "scratch", "containerPath": "/s" }] },
                { "name": "priv", "privileged": true },
                { "name": "dev", "linuxParameters": { "devices": [{ "hostPath": "/dev/sda" }] } } ] }
            """);
        var locked = With(("ECS_DISABLE_PRIVILEGED", "true"), ("ECSLITE_ALLOWED_HOST_PATHS", "/srv"));
        string Identity(string path) => path;
        Assert.Null(Core.Tasks.HostAccessCheck.Refusal(definition, definition.ContainerDefinitions[0], locked, Identity));
        Assert.Equal("privileged containers are disabled on this host (ECS_DISABLE_PRIVILEGED=true)",
            Core.Tasks.HostAccessCheck.Refusal(definition, definition.ContainerDefinitions[1], locked, Identity));
        Assert.Equal("the host path /dev/sda is not allowed on this host (ECSLITE_ALLOWED_HOST_PATHS=/srv)",
            Core.Tasks.HostAccessCheck.Refusal(definition, definition.ContainerDefinitions[2], locked, Identity));

        // /srv/data is a link to /etc: allowed as written, refused as resolved.
        Assert.Equal("the host path /srv/data is not allowed on this host (ECSLITE_ALLOWED_HOST_PATHS=/srv)",
            Core.Tasks.HostAccessCheck.Refusal(definition, definition.ContainerDefinitions[0], locked, path => path == "/srv/data" ? "/etc" : path));

        // Unrestricted (the default): everything runs.
        Assert.All(definition.ContainerDefinitions, c => Assert.Null(Core.Tasks.HostAccessCheck.Refusal(definition, c, With(), Identity)));
    }

    [Theory]
    [InlineData("cpuset cpu io memory hugetlb pids rdma misc\n", null, true)] // cgroup v2 with memory
    [InlineData("cpuset cpu io pids\n", null, false)] // a Raspberry Pi OS kernel without cgroup_enable=memory
    [InlineData(null, "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t2\t40\t1\nmemory\t0\t70\t0\n", false)] // v1, memory disabled
    [InlineData(null, "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t4\t70\t1\n", true)]
    [InlineData(null, null, false)]
    public void The_memory_cgroup_controller_is_found_on_v1_and_v2(string? controllers, string? procCgroups, bool enabled) =>
        Assert.Equal(enabled, HostFacts.MemoryCgroupEnabled(controllers, procCgroups));
}
