using System.Text.Json;
using EcsLite.FleetSimulator;
using EcsLite.Testing;

// The scale run: a real coordinator process and N simulated agents on this machine.
//   dotnet run -c Release --project tests/EcsLite.FleetSimulator -- [--agents 1000] [--tasks 100000]
//     [--callers 16] [--per-call 10] [--service-tasks 30000] [--services 30] [--kill 100]
//     [--grace-seconds 2] [--idle-seconds 30] [--json FILE] [--coordinator-log FILE] [--etcd MEMBERS] [--followers N]
// --etcd: the coordinator keeps its state in an etcd cluster of that many members started here (Debian's
// etcd-server) instead of its embedded store. --followers: that many more coordinators follow it on the
// same etcd (answering reads from its watch); their CPU and memory are reported beside the leader's.
// Scenarios, in order: idle, runtask (then DescribeTasks baselines), restart, failover. Prints a table and writes it as JSON.
if (args.FirstOrDefault() == DescribeReader.Command)
{
    return await DescribeReader.RunAsync(args[1], args[2], args[3], args[4]);
}

var agents = Option("--agents", 1000);
var tasks = Option("--tasks", 100_000);
var callers = Option("--callers", 16);
var perCall = Option("--per-call", 10);
var serviceTasks = Option("--service-tasks", 30_000);
var services = Option("--services", 30);
var kill = Option("--kill", 100);
var grace = TimeSpan.FromSeconds(Option("--grace-seconds", 2));
var idle = TimeSpan.FromSeconds(Option("--idle-seconds", 30));
var json = Array.IndexOf(args, "--json") is var j and >= 0 && j + 1 < args.Length ? args[j + 1] : null;

var etcdMembers = Option("--etcd", 0);
await using var etcd = etcdMembers > 0 ? await EtcdCluster.StartAsync(etcdMembers) : null;
await using var coordinator = await CoordinatorProcess.StartAsync(null, [$"--LostInstanceGrace={grace:c}", .. etcd is null ? Array.Empty<string>() : ["--store", etcd.Location("/scale")]]);
Console.WriteLine($"coordinator {coordinator.Address} (pid {coordinator.ProcessId}, store {(etcd is null ? "embedded" : etcd.Location("/scale"))}); starting {agents} simulated agents");
var followers = new List<CoordinatorProcess>();
for (var f = 0; etcd is not null && f < Option("--followers", 0); f++)
{
    followers.Add(await CoordinatorProcess.StartStandbyAsync(coordinator, "--store", etcd.Location("/scale")));
}

await using var fleet = await Fleet.StartAsync(new Uri(coordinator.Address), coordinator.JoinToken, agents);
var run = new ScaleRun(coordinator, fleet);
await run.RegisterAsync(memoryMiB: 16);
var figures = new List<Figure>();
await Task.Delay(TimeSpan.FromSeconds(5));
figures.AddRange(await run.IdleAsync(idle));
Print(figures);
var followersBefore = followers.Select(f => ScaleRun.Process.CpuTime(f.ProcessId)).ToList();
var running = System.Diagnostics.Stopwatch.StartNew();
figures.AddRange(await run.RunTasksAsync(tasks, perCall, callers));
for (var f = 0; f < followers.Count; f++)
{
    // The follower keeps up: its reads count the tasks the leader's do.
    static async Task<string> CountsAsync(CoordinatorProcess c) => (await c.Ecs.DescribeClustersAsync(new EcsLite.Api.V1.DescribeClustersRequest())).Clusters
        .Select(k => $"{k.RunningTasksCount} running, {k.PendingTasksCount} pending").Single();
    var (leaderCounts, followerCounts) = (await CountsAsync(coordinator), await CountsAsync(followers[f]));
    var cpu = 100 * (ScaleRun.Process.CpuTime(followers[f].ProcessId) - followersBefore[f]).TotalSeconds / running.Elapsed.TotalSeconds;
    figures.Add(new($"follower {f + 1} CPU during the run; VmRSS after; its counts", $"{cpu:N0}% of one core; {ScaleRun.Process.RssKiB(followers[f].ProcessId) / 1024.0:N0} MB; {followerCounts} (leader: {leaderCounts})", ""));
}

figures.AddRange(await run.DescribeBaselinesAsync(TimeSpan.FromSeconds(15)));
Print(figures);
foreach (var follower in followers)
{
    await follower.DisposeAsync(); // the restart and failover scenarios are the leader's alone
}

if (!args.Contains("--no-restart"))
{
    figures.AddRange(await run.RestartAsync());
    Print(figures);
}

figures.AddRange(await run.FailoverAsync(serviceTasks, services, kill, grace));
Print(figures);
if (Array.IndexOf(args, "--coordinator-log") is var l and >= 0 && l + 1 < args.Length)
{
    await File.WriteAllTextAsync(args[l + 1], coordinator.Output);
}

if (json is not null)
{
    await File.WriteAllTextAsync(json, JsonSerializer.Serialize(figures, new JsonSerializerOptions { WriteIndented = true }));
}

return 0;

int Option(string name, int fallback) =>
    Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;

static void Print(List<Figure> figures)
{
    Console.WriteLine();
    Console.WriteLine("| measure | result | target |");
    Console.WriteLine("| --- | --- | --- |");
    foreach (var f in figures)
    {
        Console.WriteLine($"| {f.Measure} | {f.Result} | {f.Target} |");
    }
}
