using EcsLite.Agent.Docker;
using EcsLite.Agent.Tasks;

namespace EcsLite.Agent.Tests;

public class TaskCgroupTests
{
    [Fact]
    public void With_the_systemd_driver_the_task_is_a_slice_with_systemd_limits()
    {
        Assert.Equal("ecslite-0123abcd.slice", TaskCgroup.SliceName("0123abcd"));
        Assert.Equal(["MemoryMax=536870912", "CPUQuota=25%"], TaskCgroup.SliceProperties(256, 512, unified: true));
        Assert.Equal(["MemoryLimit=536870912"], TaskCgroup.SliceProperties(null, 512, unified: false));
        Assert.Equal(["CPUQuota=200%"], TaskCgroup.SliceProperties(2048, null, unified: true));
    }

    [Fact]
    public async Task The_engine_reports_its_cgroup_driver()
    {
        using var docker = DockerRuntime.Connect();
        Assert.Contains(await docker.CgroupDriverAsync(default), new[] { "cgroupfs", "systemd" });
    }
}
