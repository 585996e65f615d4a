using System.Net;
using EcsLite.Agent.Core;
using EcsLite.Agent.Tasks;
using Prometheus;

namespace EcsLite.Agent;

/// <summary>
/// The agent's metrics in Prometheus's text format (prometheus-net, on its own registry, without the
/// library's default process and runtime collectors, which cost memory a Pi should keep):
/// each running container's usage, read from the kernel at scrape time; Docker call latencies; the
/// channel to the coordinator; tasks by status. Served at GET /metrics on ECSLITE_METRICS_LISTEN.
/// </summary>
public sealed class AgentMetrics : IDisposable
{
    private static readonly string[] ContainerLabels = ["task_arn", "family", "container"];
    private static readonly string[] TaskStatuses = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"];

    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Histogram _dockerCalls;
    private readonly MetricServer _server;

    /// <summary>The label sets of the containers the last scrape showed: those gone since leave the next one.</summary>
    private HashSet<string[]> _containers = new(LabelsComparer.Instance);

    public AgentMetrics(IPEndPoint listen, Func<TaskEngine?> tasks, CoordinatorConnection connection)
    {
        var factory = Metrics.WithCustomRegistry(_registry);
        _dockerCalls = factory.CreateHistogram("ecslite_agent_docker_request_duration_seconds", "Docker Engine API calls, until the response headers, by operation.",
            ["operation"], new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 4, 9) }); // 1 ms to 65 s: pulls are long
        var connected = factory.CreateGauge("ecslite_agent_channel_connected", "1 while the agent's stream to a coordinator is open and welcomed, else 0.");
        var welcomes = factory.CreateCounter("ecslite_agent_channel_welcomes_total", "Times a coordinator has welcomed this agent since it started (each reconnect adds one).");
        var taskCount = factory.CreateGauge("ecslite_agent_tasks", "Tasks this agent holds, by last status.", ["last_status"]);
        var cpu = factory.CreateCounter("ecslite_agent_container_cpu_seconds_total", "CPU time used by a task's container (cgroup cpu usage).", ContainerLabels);
        var memory = factory.CreateGauge("ecslite_agent_container_memory_working_set_bytes", "Memory used by a task's container, less the inactive page cache (as docker stats shows it).", ContainerLabels);
        var received = factory.CreateCounter("ecslite_agent_container_network_receive_bytes_total", "Bytes received on the container's network namespace (every interface but loopback).", ContainerLabels);
        var sent = factory.CreateCounter("ecslite_agent_container_network_transmit_bytes_total", "Bytes sent from the container's network namespace (every interface but loopback).", ContainerLabels);
        var read = factory.CreateCounter("ecslite_agent_container_block_read_bytes_total", "Bytes the container read from block devices (cgroup io).", ContainerLabels);
        var written = factory.CreateCounter("ecslite_agent_container_block_write_bytes_total", "Bytes the container wrote to block devices (cgroup io).", ContainerLabels);
        connection.Welcomed += (_, _) => welcomes.Inc();

        _registry.AddBeforeCollectCallback(() =>
        {
            connected.Set(connection.Connected ? 1 : 0);
            var engine = tasks();
            var statuses = (engine?.Snapshot() ?? []).GroupBy(t => t.LastStatus).ToDictionary(g => g.Key, g => g.Count());
            foreach (var status in TaskStatuses)
            {
                taskCount.WithLabels(status).Set(statuses.GetValueOrDefault(status));
            }

            var seen = new HashSet<string[]>(LabelsComparer.Instance);
            foreach (var (task, container, pid) in engine?.RunningContainers() ?? [])
            {
                if (ContainerStats.Read(pid) is not { } usage)
                {
                    continue;
                }

                string[] labels = [task.TaskArn, task.Family, container];
                seen.Add(labels);
                cpu.WithLabels(labels).IncTo(usage.CpuSeconds);
                memory.WithLabels(labels).Set(usage.MemoryBytes);
                received.WithLabels(labels).IncTo(usage.NetworkReceiveBytes);
                sent.WithLabels(labels).IncTo(usage.NetworkTransmitBytes);
                read.WithLabels(labels).IncTo(usage.BlockReadBytes);
                written.WithLabels(labels).IncTo(usage.BlockWriteBytes);
            }

            // A container that stopped leaves the scrape (Prometheus marks its series stale).
            foreach (var gone in _containers.Where(l => !seen.Contains(l)))
            {
                cpu.RemoveLabelled(gone);
                memory.RemoveLabelled(gone);
                received.RemoveLabelled(gone);
                sent.RemoveLabelled(gone);
                read.RemoveLabelled(gone);
                written.RemoveLabelled(gone);
            }

            _containers = seen;
        });

        _server = new MetricServer(listen.Address.ToString(), listen.Port, "metrics/", _registry);
        _server.Start();
    }

    /// <summary>Records one Docker Engine API call (method and path name the operation).</summary>
    public void ObserveDockerCall(HttpMethod method, string path, TimeSpan elapsed) =>
        _dockerCalls.WithLabels(DockerOperation(method, path)).Observe(elapsed.TotalSeconds);

    /// <summary>
    /// A bounded name for an Engine API call: "containers.start" for POST containers/ID/start,
    /// "containers.inspect" for GET containers/ID/json, "images.pull" for POST images/create.
    /// </summary>
    public static string DockerOperation(HttpMethod method, string path)
    {
        var segments = path.Split('?')[0].Trim('/').Split('/');
        var kind = segments[0] is "containers" or "images" or "volumes" or "networks" ? segments[0] : null;
        if (kind is null)
        {
            return segments[0] is "info" or "version" or "events" or "_ping" ? segments[0] : "other";
        }

        var last = segments[^1]; // image names have slashes of their own: look at the ends only
        var verb = last switch
        {
            "json" => segments.Length == 2 ? "list" : "inspect",
            "create" => kind == "images" ? "pull" : "create",
            _ when method == HttpMethod.Delete => "remove",
            "start" or "stop" or "kill" or "wait" or "logs" or "attach" => last,
            _ => "other",
        };
        return $"{kind}.{verb}";
    }

    public void Dispose() => _server.Dispose();

    /// <summary>Label sets compared by value.</summary>
    private sealed class LabelsComparer : IEqualityComparer<string[]>
    {
        public static readonly LabelsComparer Instance = new();

        public bool Equals(string[]? x, string[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(string[] labels) => HashCode.Combine(labels[0], labels[1], labels[2]);
    }
}
