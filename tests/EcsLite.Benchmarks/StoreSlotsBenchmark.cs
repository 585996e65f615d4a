using System.Diagnostics;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Schedules;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.State;
using EcsLite.Coordinator.Store;
using EcsLite.Store.V1;
using TaskStatus = EcsLite.Coordinator.Core.State.TaskStatus;

namespace EcsLite.Benchmarks;

/// <summary>
/// The embedded cluster store under slots of schedule fires, in process. The records are the real ones: the
/// passes of <see cref="SchedulePassBenchmark"/>'s fleet (random task ids, as the coordinator makes), mapped
/// to store writes by <see cref="StateKeys"/>, all computed before anything is timed (the store's writer
/// serializes each record as it writes it, as in the coordinator). They are written as the coordinator
/// writes them: each pass one transaction, queued without waiting for the one before; each task's RUNNING
/// report, then its STOPPED report, one transaction each, from one caller per host (each waits for its last
/// to commit, as a host's stream does); and the tasks of two slots
/// before deleted (the benchmark coordinator's one-minute retention). Per slot: the time until all is durable,
/// the process's CPU time (the store's work: nothing else runs), and the bytes it wrote: through write()
/// (/proc wchar) and to storage (write_bytes). At the end, the time to read every record back.
/// Usage: ... store-slots [--schedules 10000] [--agents 1000] [--slots 4]
/// </summary>
internal static class StoreSlotsBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var schedules = Report.Option(args, "--schedules", 10_000);
        var agents = Report.Option(args, "--agents", 1000);
        var slots = Report.Option(args, "--slots", 4);
        var state = SchedulePassBenchmark.Fleet(schedules, agents);
        var now = ScheduleRunner.NextDue(state)!.Value;
        var initial = Ops(state.Schedules.Values.Select(s => new SchedulePut(s)).Concat<StateChange>(state.ContainerInstances.Values.Select(i => new ContainerInstancePut(i))), state, state, now);

        // Every slot's writes, worked out first.
        var work = new List<(List<Txn> Passes, List<Txn> Running, List<Txn> Stopped, List<Txn> Deleted)>();
        var started = new List<List<string>>();
        for (var slot = 0; slot < slots; slot++)
        {
            var (passes, running, stopped) = (new List<Txn>(), new List<Txn>(), new List<Txn>());
            var tasks = new List<string>();
            SchedulePass pass;
            do
            {
                var run = ScheduleRunner.Run(state, new CommandContext(now.AddMilliseconds(5), new ArnFormat()), Random.Shared, () => Guid.NewGuid().ToString("N"));
                var after = run.After ?? state.Apply(run.Changes);
                passes.Add(Txn.Unconditional(Ops(run.Changes, state, after, now)));
                foreach (var put in run.Changes.OfType<TaskPut>())
                {
                    tasks.Add(put.Task.Task.TaskArn);
                    running.Add(Txn.Unconditional(Ops([new TaskPut(Reported(put.Task, TaskStatus.Running))], after, after, now)));
                    stopped.Add(Txn.Unconditional(Ops([new TaskPut(Reported(put.Task, TaskStatus.Stopped))], after, after, now)));
                }

                state = after;
                pass = run.Result;
            }
            while (pass.More);

            var deleted = slot >= 2 ? started[slot - 2].Select(arn => Txn.Unconditional(Ops([new TaskRemoved("default", arn)], state, state, now))).ToList() : [];
            started.Add(tasks);
            work.Add((passes, running, stopped, deleted));
            now = now.AddMinutes(1);
        }

        var directory = Directory.CreateTempSubdirectory("ecslite-store-slots-").FullName;
        try
        {
            await using var store = SqliteKeyValueStore.Open(directory);
            foreach (var chunk in initial.Chunk(1000))
            {
                await store.TxnAsync(Txn.Unconditional(chunk), default);
            }

            var rows = new List<(string, string, string)>();
            for (var slot = 0; slot < slots; slot++)
            {
                var (passes, running, stopped, deleted) = work[slot];
                rows.Add(($"slot {slot + 1}: {passes.Count} passes and {running.Count:N0} RUNNING reports", await MeasureAsync(async () =>
                {
                    var committed = passes.Select(p => store.TxnAsync(p, default)).ToList(); // queued in order, as the passes are
                    await Task.WhenAll(committed.Append(FromCallersAsync(store, running, agents)));
                }), ""));
                rows.Add(($"slot {slot + 1}: {stopped.Count:N0} STOPPED reports, {deleted.Count:N0} tasks deleted", await MeasureAsync(() => FromCallersAsync(store, [.. stopped, .. deleted], agents)), ""));
            }

            var read = Stopwatch.StartNew();
            var records = (await store.RangeAsync("/", default)).Kvs.Count;
            rows.Add(($"every record read, as a coordinator loads the state", $"{records:N0} in {read.ElapsedMilliseconds:N0} ms", ""));
            rows.Add(("store on disk at the end (database and log)", $"{store.SizeOnDisk / 1e6:N0} MB", ""));
            Report.Print(rows);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        return 0;
    }

    private static StoredTask Reported(StoredTask stored, string status)
    {
        var task = stored.Task.Clone();
        task.LastStatus = status;
        return stored.With(task, stored.TaskDefinition);
    }

    private static List<TxnOp> Ops(IEnumerable<StateChange> changes, CoordinatorState before, CoordinatorState after, DateTimeOffset now) =>
        [.. changes.SelectMany(c => StateKeys.ToOps(c, before, after, now))];

    /// <summary>Transactions from <paramref name="callers"/> callers, each waiting for its last to commit.</summary>
    private static Task FromCallersAsync(SqliteKeyValueStore store, IReadOnlyList<Txn> txns, int callers) =>
        Report.FromCallersAsync(callers, txns.Count, i => store.TxnAsync(txns[i], default));

    private static async Task<string> MeasureAsync(Func<Task> write)
    {
        var pid = Environment.ProcessId;
        var (cpu, written, stored) = (Report.CpuTime(pid), Report.WrittenBytes(pid), Report.StorageWriteBytes(pid));
        var watch = Stopwatch.StartNew();
        await write();
        var elapsed = watch.Elapsed;
        return $"{elapsed.TotalMilliseconds:N0} ms, CPU {(Report.CpuTime(pid) - cpu).TotalMilliseconds:N0} ms, " +
            $"write() {(Report.WrittenBytes(pid) - written) / 1e6:N0} MB, to storage {(Report.StorageWriteBytes(pid) - stored) / 1e6:N0} MB";
    }
}
