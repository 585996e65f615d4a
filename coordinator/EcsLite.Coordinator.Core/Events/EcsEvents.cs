using System.Security.Cryptography;
using System.Text;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Services;
using EcsLite.Store.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.Events;

/// <summary>
/// ECS's EventBridge events, made from the cluster store's records: each write of a task or container
/// instance is its state change event (the record is the detail, its version increasing with each
/// write), and each write of a service carries the service actions and deployment state changes it made
/// (<see cref="ServiceActions"/>, computed when it is written, since one record alone cannot tell them).
/// Made from stored records, not from memory, so a reader resuming from a revision gets the same events.
/// </summary>
public static class EcsEvents
{
    public const string TaskStateChange = "ECS Task State Change";
    public const string ContainerInstanceStateChange = "ECS Container Instance State Change";
    public const string ServiceAction = "ECS Service Action";
    public const string DeploymentStateChange = "ECS Deployment State Change";

    public static readonly IReadOnlySet<string> DetailTypes = new HashSet<string>(StringComparer.Ordinal)
    {
        TaskStateChange, ContainerInstanceStateChange, ServiceAction, DeploymentStateChange,
    };

    /// <summary>
    /// What a write of a service did, as ECS's service action and deployment events: deployments that
    /// started, completed or failed; the service reaching a steady state; the events the service scheduler
    /// said that ECS also sends as actions (tasks stopped, placement failures, tasks failing to start).
    /// </summary>
    public static List<StoredServiceAction> ServiceActions(StoredService? before, StoredService after, DateTimeOffset now)
    {
        var actions = new List<StoredServiceAction>();
        var at = Timestamp.FromDateTimeOffset(now);
        var earlier = before?.Service.Deployments.ToDictionary(d => d.Id, d => d.RolloutState, StringComparer.Ordinal) ?? [];
        foreach (var deployment in after.Service.Deployments.Reverse())
        {
            var was = earlier.GetValueOrDefault(deployment.Id);
            if (was == deployment.RolloutState)
            {
                continue;
            }

            var (eventType, eventName) = deployment.RolloutState switch
            {
                "IN_PROGRESS" => ("INFO", "SERVICE_DEPLOYMENT_IN_PROGRESS"),
                "COMPLETED" => ("INFO", "SERVICE_DEPLOYMENT_COMPLETED"),
                "FAILED" => ("ERROR", "SERVICE_DEPLOYMENT_FAILED"),
                _ => (null, null),
            };
            if (eventName is not null)
            {
                actions.Add(new StoredServiceAction
                {
                    DetailType = DeploymentStateChange, EventType = eventType, EventName = eventName,
                    DeploymentId = deployment.Id, Reason = deployment.RolloutStateReason, CreatedAt = at,
                });
            }
        }

        var said = before?.Service.Events.Select(e => e.Id).ToHashSet(StringComparer.Ordinal) ?? [];
        foreach (var serviceEvent in after.Service.Events.Where(e => !said.Contains(e.Id)).Reverse())
        {
            var action = Action(serviceEvent.Message);
            if (action is not null)
            {
                action.CreatedAt = serviceEvent.CreatedAt;
                actions.Add(action);
            }
        }

        if (after.Steady && before?.Steady != true && after.Service.Status == "ACTIVE")
        {
            actions.Add(new StoredServiceAction { DetailType = ServiceAction, EventType = "INFO", EventName = "SERVICE_STEADY_STATE", CreatedAt = at });
        }

        return actions;
    }

    /// <summary>The service action an event of the service scheduler is, if ECS sends one for it.</summary>
    private static StoredServiceAction? Action(string message)
    {
        if (ServiceScheduler.UnableToPlaceReason(message) is { } reason)
        {
            return new StoredServiceAction { DetailType = ServiceAction, EventType = "ERROR", EventName = "SERVICE_TASK_PLACEMENT_FAILURE", Reasons = { reason } };
        }

        const string Unschedulable = " is unable to schedule tasks: ";
        var unschedulable = message.IndexOf(Unschedulable, StringComparison.Ordinal);
        if (unschedulable >= 0)
        {
            return new StoredServiceAction { DetailType = ServiceAction, EventType = "ERROR", EventName = "SERVICE_TASK_CONFIGURATION_FAILURE", Reasons = { message[(unschedulable + Unschedulable.Length)..] } };
        }

        if (message.Contains(" is unable to consistently start tasks successfully.", StringComparison.Ordinal))
        {
            return new StoredServiceAction { DetailType = ServiceAction, EventType = "WARN", EventName = "SERVICE_TASK_START_IMPAIRED" };
        }

        return message.Contains(") has stopped ", StringComparison.Ordinal)
            ? new StoredServiceAction { DetailType = ServiceAction, EventType = "INFO", EventName = "TASKS_STOPPED" }
            : null;
    }

    /// <summary>A task's state change: the task as DescribeTasks shows it (tags left out, as ECS's events do).</summary>
    public static EcsEvent ForTask(StoredTask stored, long revision, ArnFormat arns)
    {
        var task = stored.Task.Clone();
        task.Tags.Clear();
        var updated = Newest(task.CreatedAt, task.PullStartedAt, task.PullStoppedAt, task.StartedAt, task.StoppingAt, task.StoppedAt, task.ExecutionStoppedAt, task.ConnectivityAt);
        var detail = Detail(task, task.Version);
        detail.Fields["updatedAt"] = Time(updated);
        return Event(TaskStateChange, task.TaskArn, updated, detail, revision, 0, arns);
    }

    /// <summary>
    /// A container instance's state change: the instance as stored (status, attributes, registered
    /// resources, version). Connection and remaining resources are left out: they are not stored, so
    /// a resumed reader could not be told them as they were.
    /// </summary>
    public static EcsEvent ForContainerInstance(StoredContainerInstance stored, long revision, ArnFormat arns)
    {
        var instance = stored.ContainerInstance.Clone();
        instance.Attributes.Add(ContainerInstanceCommands.MergedAttributes(stored));
        instance.RemainingResources.Clear();
        instance.Tags.Clear();
        var detail = Detail(instance, instance.Version);
        detail.Fields["clusterArn"] = Value.ForString(arns.Cluster(stored.Cluster));
        var updated = Newest(instance.RegisteredAt, stored.InactiveSince);
        return Event(ContainerInstanceStateChange, instance.ContainerInstanceArn, updated, detail, revision, 0, arns);
    }

    /// <summary>The service actions and deployment state changes a write of a service made.</summary>
    public static IEnumerable<EcsEvent> ForService(StoredService stored, long revision, ArnFormat arns)
    {
        var clusterArn = arns.Cluster(stored.Cluster);
        for (var i = 0; i < stored.Actions.Count; i++)
        {
            var action = stored.Actions[i];
            var detail = new Struct();
            detail.Fields["eventType"] = Value.ForString(action.EventType);
            detail.Fields["eventName"] = Value.ForString(action.EventName);
            var at = Time(action.CreatedAt);
            if (action.DetailType == DeploymentStateChange)
            {
                detail.Fields["deploymentId"] = Value.ForString(action.DeploymentId);
                detail.Fields["updatedAt"] = at;
                detail.Fields["reason"] = Value.ForString(action.Reason);
            }
            else
            {
                detail.Fields["clusterArn"] = Value.ForString(clusterArn);
                detail.Fields["createdAt"] = at;
                if (action.Reasons.Count > 0)
                {
                    detail.Fields["reasons"] = Value.ForList([.. action.Reasons.Select(Value.ForString)]);
                }
            }

            yield return Event(action.DetailType, stored.Service.ServiceArn, action.CreatedAt, detail, revision, i, arns);
        }
    }

    /// <summary>A resource's JSON as the API shows it, with its version a number as in ECS's events (proto JSON writes 64-bit integers as strings).</summary>
    private static Struct Detail(IMessage resource, long version)
    {
        var detail = Struct.Parser.ParseJson(JsonFormatter.Default.Format(resource));
        detail.Fields["version"] = Value.ForNumber(version);
        return detail;
    }

    private static EcsEvent Event(string detailType, string resourceArn, Timestamp time, Struct detail, long revision, int index, ArnFormat arns) => new()
    {
        Version = "0",
        Id = StableId($"{revision}/{resourceArn}/{detailType}/{index}"),
        DetailType = detailType,
        Source = "aws.ecs",
        Account = arns.AccountId,
        Time = new Timestamp { Seconds = time.Seconds },
        Region = arns.Region,
        Resources = { resourceArn },
        Detail = detail,
    };

    /// <summary>A time in a detail as ECS writes it: UTC, milliseconds.</summary>
    private static Value Time(Timestamp time) =>
        Value.ForString(time.ToDateTimeOffset().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));

    private static Timestamp Newest(params Timestamp?[] times) =>
        times.Where(t => t is not null).MaxBy(t => t!.ToDateTimeOffset()) ?? new Timestamp();

    /// <summary>A UUID-shaped id that is the same each time the same change is read.</summary>
    private static string StableId(string change)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(change));
        return new Guid(hash.AsSpan(0, 16)).ToString();
    }
}
