using EcsLite.Coordinator.Agents;
using EcsLite.Coordinator.Core.Observability;
using EcsLite.Coordinator.State;
using EcsLite.Coordinator.Store;
using Prometheus;

namespace EcsLite.Coordinator.Observability;

/// <summary>
/// The coordinator's metrics in Prometheus's text format (prometheus-net, on a registry of its own):
/// API calls by action, protocol and result, with latencies; placements and placement failures by
/// reason, counted once their command is committed; service scheduler passes; the store's commits and
/// size. What the cluster holds (tasks by status, instances, services, connected agents) is read from
/// the published state at scrape time, so it is never out of step with DescribeTasks.
/// </summary>
public sealed class CoordinatorMetrics
{
    private readonly Histogram _apiLatency;
    private readonly Counter _apiCalls;
    private readonly Histogram _passes;
    private Core.State.CoordinatorState? _counted;

    public CoordinatorMetrics(ClusterStateMachine state, AgentSessions sessions, IKeyValueStore store)
    {
        DotNetStats.Register(Registry); // process_cpu_seconds_total, process_working_set_bytes, dotnet_collection_count_total, ...
        var factory = Metrics.WithCustomRegistry(Registry);
        var allocated = factory.CreateCounter("ecslite_coordinator_allocated_bytes_total", "Bytes the coordinator has allocated on the managed heap since it started.");
        Registry.AddBeforeCollectCallback(() => allocated.IncTo(GC.GetTotalAllocatedBytes()));
        _apiCalls = factory.CreateCounter("ecslite_api_requests_total", "API calls (gRPC and the AWS JSON API), by action, protocol and result (OK or the error's type).",
            ["action", "protocol", "result"]);
        _apiLatency = factory.CreateHistogram("ecslite_api_request_duration_seconds", "Time to answer a unary API call, by action and protocol.",
            ["action", "protocol"], new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) }); // 0.5 ms to 4 s
        _passes = factory.CreateHistogram("ecslite_service_scheduler_pass_duration_seconds", "Service scheduler passes, from the start of the pass to its commit, by result (ok or error).",
            ["result"], new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) });

        var placements = factory.CreateCounter("ecslite_placements_total", "Tasks placed on a container instance (RunTask, StartTask, services, schedules), by cluster.", ["cluster"]);
        var failures = factory.CreateCounter("ecslite_placement_failures_total", "Tasks that could not be placed, by cluster and ECS's reason (RESOURCE:MEMORY, AGENT, ...).", ["cluster", "reason"]);
        state.Placed = (tasks, failed) =>
        {
            foreach (var cluster in tasks.GroupBy(t => t.Cluster, StringComparer.Ordinal))
            {
                placements.WithLabels(cluster.Key).Inc(cluster.Count());
            }

            foreach (var (cluster, reason) in failed)
            {
                failures.WithLabels(cluster, reason).Inc();
            }
        };

        var commits = factory.CreateHistogram("ecslite_store_commit_duration_seconds",
            "Cluster store commits, from the transaction's start until it is durable (SQLite: its fsync; etcd: the transaction's reply), one per batch of writes.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0001, 2, 16) }); // 0.1 ms to 3 s
        if (store is EtcdKeyValueStore etcd)
        {
            etcd.Committed += elapsed => commits.Observe(elapsed.TotalSeconds);
        }

        if (store is SqliteKeyValueStore sqlite)
        {
            sqlite.Committed += elapsed => commits.Observe(elapsed.TotalSeconds);
            var size = factory.CreateGauge("ecslite_store_size_bytes", "The cluster store's size on disk (database and write-ahead log).");
            var revision = factory.CreateGauge("ecslite_store_revision", "The cluster store's newest revision.");
            Registry.AddBeforeCollectCallback(() =>
            {
                size.Set(sqlite.SizeOnDisk);
                revision.Set(sqlite.Revision);
            });
        }

        var agents = factory.CreateGauge("ecslite_agents_connected", "Agents holding a stream to this coordinator.");
        var tasksByStatus = factory.CreateGauge("ecslite_tasks", "Tasks the cluster holds (STOPPED ones until purged), by cluster, last status and desired status.",
            ["cluster", "last_status", "desired_status"]);
        var instances = factory.CreateGauge("ecslite_container_instances", "Container instances, by cluster, status and whether the agent is connected.",
            ["cluster", "status", "agent_connected"]);
        var desired = factory.CreateGauge("ecslite_service_desired_tasks", "A service's desired count.", ["cluster", "service"]);
        var running = factory.CreateGauge("ecslite_service_running_tasks", "A service's RUNNING tasks.", ["cluster", "service"]);
        var pending = factory.CreateGauge("ecslite_service_pending_tasks", "A service's PENDING tasks.", ["cluster", "service"]);
        Registry.AddBeforeCollectCallback(() =>
        {
            agents.Set(sessions.Count);
            var current = state.Current;
            if (ReferenceEquals(current, _counted))
            {
                return; // nothing changed since the last scrape: the gauges hold
            }

            _counted = current;
            Refresh(tasksByStatus, TaskCounts.Of(current.Tasks.Values).Select(c => (new[] { c.Cluster, c.LastStatus, c.DesiredStatus }, (double)c.Count)));
            Refresh(instances, current.ContainerInstances.Values
                .GroupBy(i => (i.Cluster, i.ContainerInstance.Status, Connected: current.IsConnected(i.ContainerInstance.ContainerInstanceArn)))
                .Select(g => (new[] { g.Key.Cluster, g.Key.Status, g.Key.Connected ? "true" : "false" }, (double)g.Count())));
            var services = current.Services.Values.Select(s => (Labels: new[] { s.Cluster, s.Service.ServiceName }, s.Service)).ToList();
            Refresh(desired, services.Select(s => (s.Labels, (double)s.Service.DesiredCount)));
            Refresh(running, services.Select(s => (s.Labels, (double)s.Service.RunningCount)));
            Refresh(pending, services.Select(s => (s.Labels, (double)s.Service.PendingCount)));
        });
    }

    public CollectorRegistry Registry { get; } = Metrics.NewCustomRegistry();

    /// <summary>One API call: a latency for unary calls (null for a stream, whose length says nothing of the coordinator).</summary>
    public void ObserveCall(string action, string protocol, string result, TimeSpan? elapsed)
    {
        _apiCalls.WithLabels(action, protocol, result).Inc();
        if (elapsed is { } time)
        {
            _apiLatency.WithLabels(action, protocol).Observe(time.TotalSeconds);
        }
    }

    public void ObservePass(TimeSpan elapsed, bool ok) => _passes.WithLabels(ok ? "ok" : "error").Observe(elapsed.TotalSeconds);

    /// <summary>Sets a gauge's series to these values and drops the series no longer present (a deleted service, an emptied status).</summary>
    private static void Refresh(Gauge gauge, IEnumerable<(string[] Labels, double Value)> values)
    {
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (labels, value) in values)
        {
            gauge.WithLabels(labels).Set(value);
            present.Add(string.Join('\0', labels));
        }

        foreach (var labels in gauge.GetAllLabelValues().Where(l => !present.Contains(string.Join('\0', l))).ToList())
        {
            gauge.RemoveLabelled(labels);
        }
    }
}
