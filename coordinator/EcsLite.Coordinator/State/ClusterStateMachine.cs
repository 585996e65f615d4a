using System.Collections.Concurrent;
using System.Diagnostics;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.Store;
using EcsLite.Api.V1;
using EcsLite.Store.V1;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.State;

/// <summary>
/// The one writer of the cluster state. Commands run one at a time, on a thread of their own and in the
/// order they arrive, against the newest state, and their changes are queued to the store in the same
/// order, so the store's group commit can make many of them durable at once. Readers see only what is
/// durable: a state is published once its write has committed, and a caller is answered only after that.
/// </summary>
public sealed partial class ClusterStateMachine(
    IKeyValueStore store, TimeProvider time, IOptions<CoordinatorOptions> options, CoordinatorRole role,
    IHostApplicationLifetime lifetime, ILogger<ClusterStateMachine> logger)
{
    // Callers queue commands and wait without holding a thread: with 16 RunTask callers and 1,000 agents
    // reporting, waiting on a lock instead spent a seventh of the coordinator's CPU spinning.
    private readonly BlockingCollection<Action> _commands = StartCommandThread();
    private readonly ArnFormat _arns = new(options.Value.Region, options.Value.AccountId);
    private CoordinatorState _pending = CoordinatorState.Empty;
    private Task<TxnResult> _lastCommit = Task.FromResult(new TxnResult(true, 0));
    private long _lastSequence;
    private Published _published = new(CoordinatorState.Empty, 0, 0);
    private bool _writes; // only once loaded as the store's one writer (command thread)
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The newest durable state; cheap, lock-free, never changes under the reader.</summary>
    public CoordinatorState Current => Volatile.Read(ref _published).State;

    /// <summary>The store revision <see cref="Current"/> holds every write of (at least).</summary>
    public long Revision => Volatile.Read(ref _published).Revision;

    /// <summary>
    /// Waits (at most <paramref name="timeout"/>) until the published state holds the store's <paramref name="revision"/>:
    /// a following coordinator answers a change the leader made once its own reads show it.
    /// </summary>
    public async Task WaitForRevisionAsync(long revision, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var changed = Changed;
            var left = deadline - DateTime.UtcNow;
            if (Revision >= revision || left <= TimeSpan.Zero)
            {
                return;
            }

            await changed.WaitAsync(left, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    public ArnFormat Arns => _arns;

    /// <summary>Completes when a newer state is published: level-triggered loops wake on it (many changes, one wake).</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    public bool Loaded { get; private set; }

    /// <summary>
    /// Called after each commit, once its state is published, with the tasks agents must hear of
    /// (<see cref="TaskCommands.ForAgents"/>): the one path from any command to the agents.
    /// </summary>
    public Action<IReadOnlyList<string>>? TasksForAgents { get; set; }

    /// <summary>Called after each commit that placed tasks or failed to: the new tasks and the failures (for the metrics).</summary>
    public Action<IReadOnlyList<StoredTask>, IReadOnlyList<(string Cluster, string Reason)>>? Placed { get; set; }

    /// <summary>
    /// Rebuilds the state from the store, as the one coordinator that writes it (the embedded store's, or the
    /// leader of an etcd store's), and creates the default cluster on first start. With the embedded store the
    /// agent connections stored before are deleted: until an agent connects again it counts as disconnected.
    /// A leader of an etcd store keeps them (<paramref name="keepConnections"/>): other coordinators hold
    /// agents, and they tell it which (<see cref="Agents.HeartbeatMonitor"/>).
    /// </summary>
    public async Task LoadAsync(CancellationToken cancellationToken, bool keepConnections = false)
    {
        var watch = Stopwatch.StartNew();
        var (state, revision, read, parsed, allocated, connections) = await ReadAsync(cancellationToken, keepConnections);
        if (connections.Count > 0)
        {
            await store.TxnAsync(Txn.Unconditional([.. connections.Select(key => new DeleteOp(key))]), cancellationToken);
        }

        // On the command thread: a coordinator that followed may still be running commands that change nothing.
        await PostAsync(() =>
        {
            _writes = true;
            _pending = state;
            Volatile.Write(ref _published, new Published(state, ++_lastSequence, revision));
        });

        if (!state.Clusters.ContainsKey(ClusterCommands.DefaultCluster))
        {
            await ApplyAsync((s, c) => ClusterCommands.Create(s, new CreateClusterRequest(), c), cancellationToken);
            LogDefaultClusterCreated(logger);
        }

        Loaded = true;
        if (!s_commandThreadRaised) // set before the thread ran the command above
        {
            LogCommandThreadNotRaised(logger, CommandThreadNice);
        }

        var revisions = state.Families.Values.Sum(f => f.Revisions.Count);
        LogLoaded(logger, revision, state.Clusters.Count, revisions, state.Tasks.Count, watch.ElapsedMilliseconds, read, parsed - read, allocated >> 20);
    }

    /// <summary>
    /// Loads the state as a coordinator that follows the leader of an etcd store and writes nothing; returns the
    /// store revision it is at. <see cref="ApplyWatchedAsync"/> then keeps it current from the store's watch.
    /// </summary>
    public async Task<long> LoadFollowingAsync(CancellationToken cancellationToken)
    {
        var (state, revision, _, _, _, _) = await ReadAsync(cancellationToken, keepConnections: true);
        await PostAsync(() =>
        {
            _pending = state;
            Publish(state, ++_lastSequence, revision);
        });
        Loaded = true;
        return revision;
    }

    /// <summary>
    /// A following coordinator's step: a revision's changes, as the leader wrote them, applied and published,
    /// and the tasks they change told to the agents connected here (<see cref="TasksForAgents"/>).
    /// </summary>
    public Task ApplyWatchedAsync(WatchResponse response) => PostAsync(() =>
    {
        var next = _pending;
        var forAgents = new List<string>();
        var now = time.GetUtcNow();
        foreach (var change in response.Events)
        {
            var applied = change.Type == WatchEventType.Put ? StateKeys.FromRecord(change.Kv) : StateKeys.FromDeletion(change.Kv.Key, _arns, now);
            if (applied is TaskPut { Task.TaskDefinition: null } put && next.Revision(put.Task.Task.TaskDefinitionArn)?.TaskDefinition is { } registered)
            {
                applied = new TaskPut(put.Task.With(put.Task.Task, registered)); // stored without its registered definition
            }

            if (applied is not null)
            {
                if (applied is TaskPut)
                {
                    forAgents.AddRange(TaskCommands.ForAgents(next, [applied]));
                }

                next = next.Apply([applied]);
            }
        }

        _pending = next;
        Publish(next, ++_lastSequence, response.Revision);
        if (forAgents.Count > 0)
        {
            TasksForAgents?.Invoke(forAgents);
        }
    });

    private async Task<(CoordinatorState State, long Revision, long ReadMs, long ParsedMs, long Allocated, List<string> Connections)> ReadAsync(
        CancellationToken cancellationToken, bool keepConnections = false)
    {
        var watch = Stopwatch.StartNew();
        var range = await store.RangeAsync(StateKeys.Root, cancellationToken);
        var read = watch.ElapsedMilliseconds;
        var allocated = GC.GetTotalAllocatedBytes();
        var kvs = range.Kvs;
        var connections = new List<string>();
        if (!keepConnections)
        {
            connections = [.. kvs.Where(kv => kv.Key.StartsWith(StateKeys.AgentConnections, StringComparison.Ordinal)).Select(kv => kv.Key)];
            kvs = connections.Count == 0 ? kvs : [.. kvs.Where(kv => !kv.Key.StartsWith(StateKeys.AgentConnections, StringComparison.Ordinal))];
        }

        CoordinatorState state;
        long parsed;
        using (LoadingRegion.Begin(kvs.Sum(kv => (long)kv.Value.Length)))
        {
            // Parsing is much of a big store's load (100,000 tasks): spread it over the cores.
            var records = new StateChange[kvs.Count];
            Parallel.For(0, records.Length, i => records[i] = StateKeys.FromRecord(kvs[i]));
            parsed = watch.ElapsedMilliseconds;
            state = CoordinatorState.Load(records);
        }

        return (state, range.Revision, read, parsed, GC.GetTotalAllocatedBytes() - allocated, connections);
    }

    private Task PostAsync(Action action) => PostAsync(() =>
    {
        action();
        return true;
    });

    /// <summary>Runs <paramref name="action"/> on the command thread, after every command queued before it.</summary>
    private Task<T> PostAsync<T>(Func<T> action)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _commands.Add(() =>
        {
            try
            {
                done.SetResult(action());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        }, CancellationToken.None);
        return done.Task;
    }

    /// <summary>Runs a command; its changes are durable and visible to readers before this returns.</summary>
    public async Task<T> ApplyAsync<T>(Func<CoordinatorState, CommandContext, Mutation<T>> command, CancellationToken cancellationToken)
    {
        var (result, committed) = await RunAsync(command);
        await committed;
        return result;
    }

    /// <summary>
    /// A command that changes nothing, answered once it has gone through the command thread and every
    /// write queued before it is durable: the coordinator's pulse (systemd's watchdog is fed on it).
    /// </summary>
    public Task ProbeAsync() => ApplyAsync((_, _) => new Mutation<bool>([], true), CancellationToken.None);

    /// <summary>
    /// Runs a command and returns as soon as it has run, with its result and a task that completes once its
    /// changes are durable and visible to readers (the caller must not act on the result before then). A
    /// caller with many commands in a row (the schedules' passes) queues the next while this one commits.
    /// </summary>
    public async Task<(T Result, Task Committed)> RunAsync<T>(Func<CoordinatorState, CommandContext, Mutation<T>> command)
    {
        var (commit, next, sequence, forAgents, placements, result) = await PostAsync(() => Run(command));
        return (result, CommitAsync(commit, next, sequence, forAgents, placements));
    }

    private async Task CommitAsync(Task<TxnResult> commit, CoordinatorState next, long sequence, List<string> forAgents, Placements placements)
    {
        try
        {
            // Not cancellable: once queued the write happens, and the state must be published with it.
            await commit;
        }
        catch (Exception e)
        {
            // The in-memory state is now ahead of the store. Restarting rebuilds it from what is durable,
            // which is the only safe way back (systemd restarts the service).
            LogStoreWriteFailed(logger, e);
            lifetime.StopApplication();
            throw new EcsException(EcsErrorType.ServerException, "The cluster store could not save the change; the coordinator is restarting.");
        }

        Publish(next, sequence, commit.Result.Revision);
        if (forAgents.Count > 0)
        {
            TasksForAgents?.Invoke(forAgents);
        }

        if (placements.Tasks.Count > 0 || placements.Failures.Count > 0)
        {
            Placed?.Invoke(placements.Tasks, placements.Failures);
        }
    }

    /// <summary>On the command thread: the command against the newest state, its write queued to the store.</summary>
    private (Task<TxnResult> Commit, CoordinatorState Next, long Sequence, List<string> ForAgents, Placements Placements, T Result) Run<T>(Func<CoordinatorState, CommandContext, Mutation<T>> command)
    {
        if (role.Acting is { IsCompleted: false } acting)
        {
            acting.Wait(lifetime.ApplicationStopping); // the lead is in doubt: nothing is decided until etcd answers
        }

        var context = new CommandContext(time.GetUtcNow(), _arns);
        var mutation = command(_pending, context);
        var before = _pending;
        var forAgents = TaskCommands.ForAgents(before, mutation.Changes);
        var next = mutation.After ?? before.Apply(mutation.Changes);
        var ops = mutation.Changes.SelectMany(c => StateKeys.ToOps(c, before, next, context.Now)).ToList();
        if (ops.Count > 0 && !_writes)
        {
            // Changes reach a following coordinator's state only from the store (forwarded changes are the leader's).
            throw new EcsException(EcsErrorType.ServerException, "This coordinator follows the leader and changes nothing itself.");
        }

        _pending = next;
        var sequence = mutation.Changes.Count == 0 ? _lastSequence : ++_lastSequence;
        if (ops.Count > 0)
        {
            _lastCommit = store.TxnAsync(Txn.Unconditional(ops), CancellationToken.None);
        }

        var placed = mutation.Changes.OfType<TaskPut>().Where(p => !before.Tasks.ContainsKey(p.Task.Task.TaskArn)).Select(p => p.Task).ToList();

        // With nothing to write, the answer (and any in-memory change) still rests on writes in flight.
        return (_lastCommit, next, sequence, forAgents, new Placements(placed, context.PlacementFailures), mutation.Result);
    }

    /// <summary>
    /// Every state change waits for the command thread, so it goes ahead of the gRPC, store and collector threads
    /// it shares a small host's cores with: a schedule slot's passes waited 0.2-0.4 s for a core in their first
    /// second at the process's priority. Raising it needs CAP_SYS_NICE or an RLIMIT_NICE that allows it (the unit's LimitNICE).
    /// </summary>
    public const int CommandThreadNice = -5;

    private static volatile bool s_commandThreadRaised;

    private static BlockingCollection<Action> StartCommandThread()
    {
        var commands = new BlockingCollection<Action>();
        new Thread(() =>
        {
            s_commandThreadRaised = SetPriority(0, GetTid(), CommandThreadNice) == 0;

            foreach (var command in commands.GetConsumingEnumerable())
            {
                command();
            }
        }) { IsBackground = true, Name = "cluster commands" }.Start();
        return commands;
    }

    // PRIO_PROCESS (0) with a thread id: that thread only (Linux).
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "setpriority")]
    private static extern int SetPriority(int which, int who, int prio);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetTid();

    private void Publish(CoordinatorState state, long sequence, long revision)
    {
        while (true)
        {
            var current = Volatile.Read(ref _published);
            if (current.Sequence >= sequence)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _published, new Published(state, sequence, Math.Max(revision, current.Revision)), current) == current)
            {
                Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                return;
            }
        }
    }

    private sealed record Published(CoordinatorState State, long Sequence, long Revision);

    private sealed record Placements(List<StoredTask> Tasks, List<(string Cluster, string Reason)> Failures);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster state loaded: store revision {Revision}, {Clusters} clusters, {Revisions} task definition revisions, {Tasks} tasks, in {ElapsedMs} ms (read {ReadMs} ms, parse {ParseMs} ms, {AllocatedMiB} MiB allocated after reading)")]
    private static partial void LogLoaded(ILogger logger, long revision, int clusters, int revisions, int tasks, long elapsedMs, long readMs, long parseMs, long allocatedMiB);

    [LoggerMessage(Level = LogLevel.Information, Message = "The cluster command thread runs at the process's priority: raising it to nice {Nice} needs LimitNICE={Nice} (systemd) or CAP_SYS_NICE")]
    private static partial void LogCommandThreadNotRaised(ILogger logger, int nice);

    [LoggerMessage(Level = LogLevel.Information, Message = "Created the cluster 'default'")]
    private static partial void LogDefaultClusterCreated(ILogger logger);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The cluster store failed to commit a change; stopping so that a restart reloads the durable state")]
    private static partial void LogStoreWriteFailed(ILogger logger, Exception exception);
}
