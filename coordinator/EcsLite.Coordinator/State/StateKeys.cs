using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.Events;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Store;
using EcsLite.Api.V1;
using EcsLite.Store.V1;
using Google.Protobuf;

namespace EcsLite.Coordinator.State;

/// <summary>
/// The store's key layout and the mapping between state changes and store records:
///   /clusters/NAME                      Cluster
///   /task-definition-families/FAMILY    TaskDefinitionFamilyRecord (the revision counter)
///   /task-definitions/FAMILY/REVISION   StoredTaskDefinition (revision zero-padded, so keys sort by revision)
///   /container-instances/CLUSTER/ID     StoredContainerInstance
///   /tasks/CLUSTER/ID                   StoredTask
///   /services/CLUSTER/NAME              StoredService
///   /schedules/GROUP/NAME               StoredSchedule (its fires are recorded in the same write as the tasks they start)
///   /agent-connections/CLUSTER/ID       "ARN SINCE-MS CONNECTED(1|0) [HOLDER-URL]": whether the instance's agent is
///                                       connected, and to which coordinator (the one that holds its stream)
/// With the embedded store a coordinator that loads the state deletes the connections: until it reconnects, every
/// agent counts as disconnected. A leader of an etcd store keeps them: the followers' agents stay connected to them.
/// </summary>
public static class StateKeys
{
    public const string Root = "/";
    private const string Clusters = "/clusters/";
    private const string Families = "/task-definition-families/";
    private const string TaskDefinitions = "/task-definitions/";
    private const string ContainerInstances = "/container-instances/";
    private const string Tasks = "/tasks/";
    private const string Services = "/services/";
    private const string Schedules = "/schedules/default/";
    public const string AgentConnections = "/agent-connections/";

    /// <summary>The store writes for a change: a removed instance's connection record goes with it.</summary>
    public static IEnumerable<TxnOp> ToOps(StateChange change, CoordinatorState before, CoordinatorState state, DateTimeOffset now) => change switch
    {
        ContainerInstanceRemoved removed => [ToOp(change, before, state, now)!, new DeleteOp(ConnectionKey(removed.ContainerInstanceArn))],
        _ => ToOp(change, before, state, now) is { } op ? [op] : [],
    };

    /// <summary>
    /// The store write for a change, or null for a change that lives in memory only. <paramref name="state"/>
    /// is the state after the change: a task that runs its registered task definition is stored without
    /// a copy of it (most of a task's record otherwise), and loading finds it by the task's taskDefinitionArn.
    /// A service is stored with the actions the change made (from <paramref name="before"/>), for the event stream.
    /// </summary>
    private static TxnOp? ToOp(StateChange change, CoordinatorState before, CoordinatorState state, DateTimeOffset now) => change switch
    {
        ContainerInstancePut put => new PutOp($"{ContainerInstances}{put.Instance.Cluster}/{put.Instance.ContainerInstance.ContainerInstanceArn.Split('/')[^1]}", put.Instance),
        AgentConnectionChanged changed => new PutOp(ConnectionKey(changed.ContainerInstanceArn),
            System.Text.Encoding.UTF8.GetBytes($"{changed.ContainerInstanceArn} {changed.At.ToUnixTimeMilliseconds()} {(changed.Connected ? 1 : 0)} {changed.Holder}".TrimEnd())),
        TaskPut put => new PutOp(
            $"{Tasks}{put.Task.Cluster}/{put.Task.Task.TaskArn.Split('/')[^1]}",
            state.RunsRegistered(put.Task) ? put.Task.With(put.Task.Task, null) : put.Task),
        TaskRemoved removed => new DeleteOp($"{Tasks}{removed.Cluster}/{removed.TaskArn.Split('/')[^1]}"),
        ServicePut put => new PutOp($"{Services}{put.Service.Cluster}/{put.Service.Service.ServiceName}", WithActions(put.Service, before, now)),
        ServiceRemoved removed => new DeleteOp($"{Services}{removed.Cluster}/{removed.ServiceName}"),
        ContainerInstanceRemoved removed => new DeleteOp($"{ContainerInstances}{removed.Cluster}/{removed.ContainerInstanceArn.Split('/')[^1]}"),
        SchedulePut put => new PutOp(Schedules + put.Schedule.Schedule.Name, put.Schedule),
        ScheduleRemoved removed => new DeleteOp(Schedules + removed.Name),
        ClusterPut put => new PutOp(Clusters + put.Cluster.ClusterName, put.Cluster),
        FamilyPut put => new PutOp(Families + put.Family, new TaskDefinitionFamilyRecord { Family = put.Family, LastRevision = put.LastRevision }),
        TaskDefinitionPut put => new PutOp(TaskDefinitionKey(put.Definition.TaskDefinition.Family, put.Definition.TaskDefinition.Revision), put.Definition),
        TaskDefinitionRemoved removed => new DeleteOp(TaskDefinitionKey(removed.Family, removed.Revision)),
        _ => throw new ArgumentOutOfRangeException(nameof(change), change, "no key for this change"),
    };

    /// <summary>The change that recreates a stored record in the state, for loading at start.</summary>
    public static StateChange FromRecord(KeyValue kv)
    {
        if (kv.Key.StartsWith(Clusters, StringComparison.Ordinal))
        {
            return new ClusterPut(Cluster.Parser.ParseFrom(kv.Value));
        }

        if (kv.Key.StartsWith(Families, StringComparison.Ordinal))
        {
            var record = TaskDefinitionFamilyRecord.Parser.ParseFrom(kv.Value);
            return new FamilyPut(record.Family, record.LastRevision);
        }

        if (kv.Key.StartsWith(TaskDefinitions, StringComparison.Ordinal))
        {
            return new TaskDefinitionPut(StoredTaskDefinition.Parser.ParseFrom(kv.Value));
        }

        if (kv.Key.StartsWith(ContainerInstances, StringComparison.Ordinal))
        {
            return new ContainerInstancePut(StoredContainerInstance.Parser.ParseFrom(kv.Value));
        }

        if (kv.Key.StartsWith(Tasks, StringComparison.Ordinal))
        {
            return new TaskPut(StoredTask.Parser.ParseFrom(kv.Value));
        }

        if (kv.Key.StartsWith(Services, StringComparison.Ordinal))
        {
            var service = StoredService.Parser.ParseFrom(kv.Value);
            service.Actions.Clear(); // the event stream's, not the state's
            return new ServicePut(service);
        }

        if (kv.Key.StartsWith(Schedules, StringComparison.Ordinal))
        {
            return new SchedulePut(StoredSchedule.Parser.ParseFrom(kv.Value));
        }

        if (kv.Key.StartsWith(AgentConnections, StringComparison.Ordinal))
        {
            return System.Text.Encoding.UTF8.GetString(kv.Value).Split(' ') is [var arn, var since, var connected, .. var holder] && holder.Length <= 1 && long.TryParse(since, out var ms)
                ? new AgentConnectionChanged(arn, connected == "1", DateTimeOffset.FromUnixTimeMilliseconds(ms), holder is [var by] ? by : "")
                : throw new InvalidDataException($"the agent connection record {kv.Key} is malformed");
        }

        throw new InvalidDataException($"the store holds a key this coordinator does not know: {kv.Key}");
    }

    /// <summary>The change a deleted key is, for a coordinator following the store's watch; null for a key of no change.</summary>
    public static StateChange? FromDeletion(string key, ArnFormat arns, DateTimeOffset at)
    {
        var parts = key.Split('/'); // "", kind, then the key's own parts
        if (parts.Length != 4)
        {
            return null;
        }

        var (cluster, name) = (parts[2], parts[3]);
        return $"/{parts[1]}/" switch
        {
            Tasks => new TaskRemoved(arns.Task(cluster, name), cluster),
            Services => new ServiceRemoved(cluster, name),
            ContainerInstances => new ContainerInstanceRemoved(arns.ContainerInstance(cluster, name), cluster),
            AgentConnections => new AgentConnectionChanged(arns.ContainerInstance(cluster, name), false, at),
            TaskDefinitions when int.TryParse(name, out var revision) => new TaskDefinitionRemoved(cluster, revision),
            _ when key.StartsWith(Schedules, StringComparison.Ordinal) => new ScheduleRemoved(name),
            _ => null,
        };
    }

    private static string ConnectionKey(string containerInstanceArn) =>
        $"{AgentConnections}{containerInstanceArn.Split('/')[^2]}/{containerInstanceArn.Split('/')[^1]}";

    /// <summary>
    /// The ECS events a store change is, if it is in <paramref name="cluster"/> (any cluster if null):
    /// a write of a task, container instance or service (<see cref="EcsEvents"/>); deletes are none.
    /// </summary>
    public static IEnumerable<EcsEvent> Events(WatchEvent change, string? cluster, ArnFormat arns)
    {
        var key = change.Kv.Key;
        var kind = new[] { Tasks, ContainerInstances, Services }.FirstOrDefault(k => key.StartsWith(k, StringComparison.Ordinal));
        if (change.Type != WatchEventType.Put || kind is null
            || (cluster is not null && !key.AsSpan(kind.Length).StartsWith($"{cluster}/", StringComparison.Ordinal)))
        {
            return [];
        }

        var revision = change.Kv.ModRevision;
        return kind switch
        {
            Tasks => [EcsEvents.ForTask(StoredTask.Parser.ParseFrom(change.Kv.Value), revision, arns)],
            ContainerInstances => [EcsEvents.ForContainerInstance(StoredContainerInstance.Parser.ParseFrom(change.Kv.Value), revision, arns)],
            _ => EcsEvents.ForService(StoredService.Parser.ParseFrom(change.Kv.Value), revision, arns),
        };
    }

    /// <summary>The record to store for a service: with the actions this write made, when it made any.</summary>
    private static StoredService WithActions(StoredService service, CoordinatorState before, DateTimeOffset now)
    {
        var earlier = before.Services.GetValueOrDefault(CoordinatorState.ServiceKey(service.Cluster, service.Service.ServiceName));
        var actions = EcsEvents.ServiceActions(earlier, service, now);
        if (actions.Count == 0)
        {
            return service;
        }

        var record = service.Clone();
        record.Actions.Add(actions);
        return record;
    }

    private static string TaskDefinitionKey(string family, int revision) => $"{TaskDefinitions}{family}/{revision:D10}";
}
