namespace EcsLite.Agent.Core.Tests;

/// <summary>The kernel files a container's usage is read from, as cgroup v1 and v2 and /proc write them.</summary>
public class ContainerStatsTests
{
    [Fact]
    public void Cgroup_paths_of_v1_name_each_controller_and_v2_one_tree()
    {
        var v1 = ContainerStats.CgroupPaths("""
            12:cpu,cpuacct:/ecslite/abc/d3ad
            7:blkio:/ecslite/abc/d3ad
            4:memory:/ecslite/abc/d3ad
            1:name=systemd:/docker/d3ad
            0::/docker/d3ad
            """);
        Assert.Equal("/ecslite/abc/d3ad", v1["cpuacct"]);
        Assert.Equal("/ecslite/abc/d3ad", v1["memory"]);
        Assert.False(v1.ContainsKey(""), "a hybrid host's v2 line must not hide v1's controllers");

        var v2 = ContainerStats.CgroupPaths("0::/system.slice/docker-d3ad.scope\n");
        Assert.Equal("/system.slice/docker-d3ad.scope", v2[""]);
    }

    [Fact]
    public void Network_bytes_add_every_interface_but_loopback()
    {
        const string NetDev = """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo:  999999      10    0    0    0     0          0         0   999999      10    0    0    0     0       0          0
              eth0:     646       7    0    0    0     0          0         0      100       2    0    0    0     0       0          0
              eth1:1000000000 7    0    0    0     0          0         0       50       1    0    0    0     0       0          0
            """;
        Assert.Equal((1_000_000_646L, 150L), ContainerStats.NetworkBytes(NetDev));
    }

    [Fact]
    public void Block_io_is_summed_over_devices_in_both_formats()
    {
        Assert.Equal((4096L + 10, 8192L + 20), ContainerStats.IoStatBytes("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=10 wbytes=20 rios=1 wios=1\n"));
        Assert.Equal((300L, 7L), ContainerStats.BlkioBytes("8:0 Read 100\n8:0 Write 7\n8:0 Sync 107\n8:16 Read 200\n8:16 Write 0\nTotal 307\n"));
    }

    [Fact]
    public void The_working_set_leaves_out_the_inactive_page_cache_and_is_never_negative()
    {
        Assert.Equal(22396928L - 20971520, ContainerStats.WorkingSet("22396928\n", "cache 20971520\ntotal_inactive_file 20971520\n", "total_inactive_file"));
        Assert.Equal(5000L, ContainerStats.WorkingSet("5000", "anon 4000\ninactive_file_x 9\n", "inactive_file"));
        Assert.Equal(0L, ContainerStats.WorkingSet("10", "inactive_file 20\n", "inactive_file"));
        Assert.Equal(1234L, ContainerStats.CpuStatUsageMicroseconds("usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n"));
    }

    [Fact]
    public void A_process_that_is_gone_has_no_usage()
    {
        // (Real containers' figures are checked end to end by MetricsTests.)
        Assert.Null(ContainerStats.Read(int.MaxValue));
    }
}
