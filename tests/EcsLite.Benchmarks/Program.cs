using EcsLite.Benchmarks;

// Load programs over real gRPC against the real processes; see docs/benchmarks.md for the figures.
//   taskdefs      RegisterTaskDefinition rate, DescribeTaskDefinition latency, start-up with 10,000 revisions
//   agent-idle    the real agent's VmRSS and CPU while idle and connected, per build
//   agent-fleet   coordinator CPU and VmRSS with 1,000 simulated agents heartbeating
//   agent-spread  two coordinators on etcd: 1,000 agents all on the leader, then spread over both
//   agent-tasks   task start-up through the agent vs docker run; the agent's VmRSS with 20 tasks
//   placement     placement decisions per second (BenchmarkDotNet) over 1,000 and 5,000 instances
//   runtask       RunTask to RUNNING through the coordinator and agent vs docker run
//   service-pass  one service scheduler pass over 1,000 services / 30,000 tasks (BenchmarkDotNet)
//   failover      a lost instance's service tasks RUNNING elsewhere, with simulated agents
//   security      RunTask, DescribeTasks and 1,000 agents joining, with security on and off (InsecureTestMode)
//   schedules     10,000 rate(1 minute) schedules over 1,000 simulated hosts: slot to fire and to RUNNING, coordinator CPU
//   store-slots   the embedded store under slots of schedule fires: time to durable, CPU, bytes written
//   json-api      DescribeTasks and RunTask through the JSON API (SigV4) against the same calls over gRPC
//   tls-floor     what TLS costs with no EcsLite code on the path: sockets vs SslStream, empty Kestrel h2c vs TLS
return args.FirstOrDefault() switch
{
    "agent-idle" => await AgentIdleBenchmark.RunAsync(args),
    "agent-fleet" => await AgentFleetBenchmark.RunAsync(args),
    "agent-spread" => await AgentSpreadBenchmark.RunAsync(args),
    "agent-tasks" => await AgentTasksBenchmark.RunAsync(args),
    "placement" => PlacementBenchmark.Run(args),
    "runtask" => await RunTaskBenchmark.RunAsync(args),
    "service-pass" => ServicePassBenchmark.Run(args),
    "failover" => await FailoverBenchmark.RunAsync(args),
    "security" => await SecurityBenchmark.RunAsync(args),
    "schedules" => await ScheduleBenchmark.RunAsync(args),
    "schedule-pass" => SchedulePassBenchmark.Run(args),
    "store-slots" => await StoreSlotsBenchmark.RunAsync(args),
    "json-api" => await JsonApiBenchmark.RunAsync(args),
    "metrics" => await MetricsBenchmark.RunAsync(args),
    "tls-floor" => await TlsFloorBenchmark.RunAsync(args),
    "tls-floor-server" => await TlsFloorBenchmark.ServeAsync(args),
    "taskdefs" or null => await TaskDefinitionBenchmark.RunAsync(args),
    var other => Fail(other),
};

static int Fail(string command)
{
    Console.Error.WriteLine($"unknown benchmark '{command}': taskdefs, agent-idle, agent-fleet, agent-tasks, placement, runtask, service-pass, failover, security, schedules, schedule-pass, store-slots, json-api, metrics or tls-floor");
    return 2;
}
