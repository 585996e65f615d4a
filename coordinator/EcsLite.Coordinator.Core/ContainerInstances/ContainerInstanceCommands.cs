using System.Text.RegularExpressions;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.Query;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Store.V1;
using Google.Protobuf.WellKnownTypes;
using TaskStatus = EcsLite.Coordinator.Core.State.TaskStatus;

namespace EcsLite.Coordinator.Core.ContainerInstances;

/// <summary>Container instances: agents joining over the channel, and ECS's container instance and attribute actions.</summary>
public static partial class ContainerInstanceCommands
{
    public const int MaxCustomAttributes = 10;

    /// <summary>Names the agent reports and ECS reserves; PutAttributes cannot set them.</summary>
    private static readonly string[] ReservedPrefixes = ["ecs.", "com.amazonaws.ecs."];

    [GeneratedRegex(@"^[A-Za-z0-9_.\-@/:]{1,128}$")]
    private static partial Regex AttributeName();

    /// <summary>
    /// An agent's hello: a new container instance when it names none, else the instance it already is,
    /// updated with what the host offers now. Either way the agent counts as connected from now.
    /// </summary>
    /// <param name="newId">The id for a new instance, chosen by the caller (this core has no randomness).</param>
    /// <param name="holder">The coordinator the agent's stream is connected to.</param>
    public static Mutation<StoredContainerInstance> Join(CoordinatorState state, AgentHello hello, CommandContext context, string newId, string holder = "")
    {
        var cluster = ClusterCommands.Active(state, hello.Cluster, "hello.cluster");
        ValidateHello(hello);

        StoredContainerInstance? existing = null;
        if (hello.ContainerInstanceArn.Length > 0)
        {
            existing = Existing(state, hello.ContainerInstanceArn, cluster.ClusterName);
        }

        var stored = existing?.Clone() ?? New(cluster.ClusterName, newId, context);
        var instance = stored.ContainerInstance;
        if (instance.Status == ContainerInstanceStatus.Registering)
        {
            instance.Status = ContainerInstanceStatus.Active;
        }

        stored.Hostname = hello.Hostname;
        instance.VersionInfo = hello.VersionInfo ?? new VersionInfo();
        Replace(instance.RegisteredResources, hello.RegisteredResources);
        Replace(instance.RemainingResources, hello.RegisteredResources);
        Replace(stored.AgentAttributes, hello.Attributes);

        var changes = new List<StateChange>();
        if (existing is null || !existing.Equals(stored))
        {
            instance.Version++;
            changes.Add(new ContainerInstancePut(stored));
        }

        changes.Add(new AgentConnectionChanged(instance.ContainerInstanceArn, true, context.Now, holder));
        return new(changes, stored);
    }

    /// <summary>
    /// A host enrolled with a join token: its container instance exists from now on (REGISTERING, with
    /// nothing to offer until its agent's hello), so the certificate issued for it names a real ARN and
    /// a deregistered one stays refused.
    /// </summary>
    public static Mutation<StoredContainerInstance> Enroll(CoordinatorState state, string cluster, string hostname, CommandContext context, string newId)
    {
        var active = ClusterCommands.Active(state, cluster, "cluster");
        if (hostname.Length is 0 or > 255)
        {
            throw EcsException.InvalidParameter("hostname", "is required (at most 255 characters).");
        }

        var stored = New(active.ClusterName, newId, context);
        stored.Hostname = hostname;
        stored.ContainerInstance.Status = ContainerInstanceStatus.Registering;
        stored.ContainerInstance.Version = 1;
        return new([new ContainerInstancePut(stored)], stored);
    }

    /// <summary>
    /// The agent's stream ended or its heartbeats stopped, as <paramref name="holder"/> saw it (null: whichever
    /// coordinator holds it). A coordinator that no longer holds the stream (the agent connected to another
    /// since) changes nothing.
    /// </summary>
    public static Mutation<bool> Disconnected(CoordinatorState state, string containerInstanceArn, CommandContext context, string? holder = null) =>
        state.Connections.GetValueOrDefault(containerInstanceArn) is { Connected: true } connection && (holder is null || connection.Holder == holder)
            ? new([new AgentConnectionChanged(containerInstanceArn, false, context.Now, connection.Holder)], true)
            : new([], false);

    /// <summary>Heartbeats resumed on a stream that had gone quiet (held by <paramref name="holder"/>).</summary>
    public static Mutation<bool> Reconnected(CoordinatorState state, string containerInstanceArn, CommandContext context, string holder = "") =>
        state.IsConnected(containerInstanceArn) || !state.ContainerInstances.ContainsKey(containerInstanceArn)
            ? new([], false)
            : new([new AgentConnectionChanged(containerInstanceArn, true, context.Now, holder)], true);

    public static ListContainerInstancesResponse List(CoordinatorState state, ListContainerInstancesRequest request)
    {
        ShapeRules.Validate(request);
        var cluster = ClusterCommands.Active(state, request.Cluster);
        var query = request.HasFilter && request.Filter.Length > 0 ? ClusterQuery.Parse(request.Filter, "filter") : null;
        var matching = InCluster(state, cluster.ClusterName)
            .Where(i => request.HasStatus ? i.ContainerInstance.Status == request.Status : i.ContainerInstance.Status != ContainerInstanceStatus.Inactive)
            .Where(i => query is null || query.Matches(Facts(state, i)));
        var (page, next) = Paging.Take(matching, i => i.ContainerInstance.ContainerInstanceArn, request.HasMaxResults, request.MaxResults, request.NextToken);
        var response = new ListContainerInstancesResponse();
        response.ContainerInstanceArns.Add(page.Select(i => i.ContainerInstance.ContainerInstanceArn));
        if (next is not null)
        {
            response.NextToken = next;
        }

        return response;
    }

    public static DescribeContainerInstancesResponse Describe(CoordinatorState state, DescribeContainerInstancesRequest request, ArnFormat arns)
    {
        ShapeRules.Validate(request);
        var cluster = ClusterCommands.Active(state, request.Cluster);
        if (request.ContainerInstances.Count > 100)
        {
            throw EcsException.InvalidParameter("containerInstances", $"at most 100 container instances can be described at once (got {request.ContainerInstances.Count}).");
        }

        var response = new DescribeContainerInstancesResponse();
        for (var i = 0; i < request.ContainerInstances.Count; i++)
        {
            var arn = Arn(request.ContainerInstances[i], cluster.ClusterName, arns, $"containerInstances[{i}]");
            if (state.ContainerInstances.TryGetValue(arn, out var stored))
            {
                response.ContainerInstances.Add(View(state, stored, request.Include.Contains("TAGS")));
            }
            else
            {
                response.Failures.Add(new Failure { Arn = arn, Reason = "MISSING" });
            }
        }

        return response;
    }

    /// <summary>ECS deregisters an instance with tasks only when forced; a deregistered instance stays describable as INACTIVE.</summary>
    public static Mutation<DeregisterContainerInstanceResponse> Deregister(CoordinatorState state, DeregisterContainerInstanceRequest request, CommandContext context)
    {
        ShapeRules.Validate(request);
        var cluster = ClusterCommands.Active(state, request.Cluster);
        var stored = Find(state, request.ContainerInstance, cluster.ClusterName, context.Arns, "containerInstance");
        if (stored.ContainerInstance.Status == ContainerInstanceStatus.Inactive)
        {
            throw EcsException.Client("containerInstance", $"'{request.ContainerInstance}' is already deregistered.");
        }

        var tasks = state.ActiveTasks(containerInstanceArn: stored.ContainerInstance.ContainerInstanceArn).Count();
        if (tasks > 0 && !(request.HasForce && request.Force))
        {
            throw EcsException.InvalidParameter("containerInstance", $"the container instance has {tasks} tasks; stop them first or deregister with force.");
        }

        var updated = stored.Clone();
        updated.ContainerInstance.Status = ContainerInstanceStatus.Inactive;
        updated.ContainerInstance.Version++;
        updated.InactiveSince = Timestamp.FromDateTimeOffset(context.Now);
        var changes = new List<StateChange> { new ContainerInstancePut(updated) };

        // Forced: its tasks are orphaned (their containers stay on the host, as in ECS) and count as
        // STOPPED here, so nothing waits for an agent that can no longer report them.
        foreach (var task in state.ActiveTasks(containerInstanceArn: stored.ContainerInstance.ContainerInstanceArn))
        {
            var orphaned = TaskCommands.Changing(task);
            var now = Timestamp.FromDateTimeOffset(context.Now);
            orphaned.Task.DesiredStatus = orphaned.Task.LastStatus = TaskStatus.Stopped;
            orphaned.Task.StopCode = orphaned.Task.HasStopCode ? orphaned.Task.StopCode : "UserInitiated";
            orphaned.Task.StoppedReason = orphaned.Task.HasStoppedReason ? orphaned.Task.StoppedReason : "Container instance deregistration forced by user";
            orphaned.Task.StoppingAt ??= now;
            orphaned.Task.StoppedAt = orphaned.Task.ExecutionStoppedAt = now;
            orphaned.Task.Version++;
            changes.Add(new TaskPut(orphaned));
        }

        var after = state.Apply(changes);
        return new(changes, new DeregisterContainerInstanceResponse { ContainerInstance = View(after, updated, includeTags: false) });
    }

    public static Mutation<UpdateContainerInstancesStateResponse> UpdateState(CoordinatorState state, UpdateContainerInstancesStateRequest request, CommandContext context)
    {
        ShapeRules.Validate(request);
        if (request.Status is not (ContainerInstanceStatus.Active or ContainerInstanceStatus.Draining))
        {
            throw EcsException.InvalidParameter("status", $"an instance can be set to ACTIVE or DRAINING only (got {request.Status}).");
        }

        var cluster = ClusterCommands.Active(state, request.Cluster);
        var changes = new List<StateChange>();
        var response = new UpdateContainerInstancesStateResponse();
        for (var i = 0; i < request.ContainerInstances.Count; i++)
        {
            var arn = Arn(request.ContainerInstances[i], cluster.ClusterName, context.Arns, $"containerInstances[{i}]");
            if (!state.ContainerInstances.TryGetValue(arn, out var stored) || stored.ContainerInstance.Status == ContainerInstanceStatus.Inactive)
            {
                response.Failures.Add(new Failure { Arn = arn, Reason = "MISSING" });
                continue;
            }

            var updated = stored;
            if (stored.ContainerInstance.Status != request.Status)
            {
                updated = stored.Clone();
                updated.ContainerInstance.Status = request.Status;
                updated.ContainerInstance.Version++;
                changes.Add(new ContainerInstancePut(updated));
            }

            response.ContainerInstances.Add(View(state, updated, includeTags: false));
        }

        return new(changes, response);
    }

    public static Mutation<PutAttributesResponse> PutAttributes(CoordinatorState state, PutAttributesRequest request, CommandContext context)
    {
        ShapeRules.Validate(request);
        var cluster = ClusterCommands.Active(state, request.Cluster);
        if (request.Attributes.Count > MaxCustomAttributes)
        {
            throw EcsException.InvalidParameter("attributes", $"at most {MaxCustomAttributes} attributes can be put at once (got {request.Attributes.Count}).");
        }

        var updates = new Dictionary<string, StoredContainerInstance>(StringComparer.Ordinal);
        var response = new PutAttributesResponse();
        for (var i = 0; i < request.Attributes.Count; i++)
        {
            var attribute = request.Attributes[i];
            var field = $"attributes[{i}]";
            ValidateCustomAttribute(attribute, field);
            var target = Target(state, attribute, cluster.ClusterName, context.Arns, field, updates);
            if (target.CustomAttributes.FirstOrDefault(a => a.Name == attribute.Name) is { } replaced)
            {
                target.CustomAttributes.Remove(replaced);
            }

            target.CustomAttributes.Add(new Api.V1.Attribute { Name = attribute.Name, Value = attribute.HasValue ? attribute.Value : "" });
            if (target.CustomAttributes.Count > MaxCustomAttributes)
            {
                throw EcsException.InvalidParameter(field, $"a container instance can have at most {MaxCustomAttributes} custom attributes.");
            }

            response.Attributes.Add(WithTarget(attribute, target));
        }

        return new(Puts(updates), response);
    }

    public static Mutation<DeleteAttributesResponse> DeleteAttributes(CoordinatorState state, DeleteAttributesRequest request, CommandContext context)
    {
        ShapeRules.Validate(request);
        var cluster = ClusterCommands.Active(state, request.Cluster);
        var updates = new Dictionary<string, StoredContainerInstance>(StringComparer.Ordinal);
        var response = new DeleteAttributesResponse();
        for (var i = 0; i < request.Attributes.Count; i++)
        {
            var attribute = request.Attributes[i];
            var target = Target(state, attribute, cluster.ClusterName, context.Arns, $"attributes[{i}]", updates);
            var existing = target.CustomAttributes.FirstOrDefault(a => a.Name == attribute.Name)
                ?? throw EcsException.InvalidParameter($"attributes[{i}].name", $"the container instance has no custom attribute '{attribute.Name}'.");
            target.CustomAttributes.Remove(existing);
            response.Attributes.Add(WithTarget(existing, target));
        }

        return new(Puts(updates), response);
    }

    public static ListAttributesResponse ListAttributes(CoordinatorState state, ListAttributesRequest request)
    {
        ShapeRules.Validate(request);
        var cluster = ClusterCommands.Active(state, request.Cluster);
        if (request.HasAttributeValue && !request.HasAttributeName)
        {
            throw EcsException.InvalidParameter("attributeValue", "attributeValue needs attributeName.");
        }

        var attributes = InCluster(state, cluster.ClusterName)
            .Where(i => i.ContainerInstance.Status != ContainerInstanceStatus.Inactive)
            .SelectMany(i => MergedAttributes(i).Select(a => WithTarget(a, i)))
            .Where(a => !request.HasAttributeName || a.Name == request.AttributeName)
            .Where(a => !request.HasAttributeValue || a.Value == request.AttributeValue);
        var (page, next) = Paging.Take(attributes, a => $"{a.TargetId}\u0000{a.Name}", request.HasMaxResults, request.MaxResults, request.NextToken);
        var response = new ListAttributesResponse();
        response.Attributes.Add(page);
        if (next is not null)
        {
            response.NextToken = next;
        }

        return response;
    }

    /// <summary>The instance as ECS shows it: attributes merged, connection and remaining resources as of now.</summary>
    public static ContainerInstance View(CoordinatorState state, StoredContainerInstance stored, bool includeTags)
    {
        var view = stored.ContainerInstance.Clone();
        view.Attributes.Add(MergedAttributes(stored));
        view.AgentConnected = state.IsConnected(view.ContainerInstanceArn);
        (view.RunningTasksCount, view.PendingTasksCount) = state.TaskCounts(containerInstanceArn: view.ContainerInstanceArn);

        // What is left once the tasks there have taken theirs: what placement sees.
        var usage = state.UsageOf(view.ContainerInstanceArn);
        foreach (var remaining in view.RemainingResources)
        {
            switch (remaining.Name)
            {
                case "CPU":
                    remaining.IntegerValue -= usage.Cpu;
                    break;
                case "MEMORY":
                    remaining.IntegerValue -= usage.Memory;
                    break;
                case "PORTS" or "PORTS_UDP":
                    var taken = (remaining.Name == "PORTS" ? usage.TcpPorts : usage.UdpPorts).Keys.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    var all = remaining.StringSetValue.Union(taken).ToList();
                    remaining.StringSetValue.Clear();
                    remaining.StringSetValue.Add(all);
                    break;
            }
        }

        if (!includeTags)
        {
            view.Tags.Clear();
        }

        return view;
    }

    /// <summary>What the cluster query language sees of an instance.</summary>
    public static InstanceFacts Facts(CoordinatorState state, StoredContainerInstance stored)
    {
        var usage = state.UsageOf(stored.ContainerInstance.ContainerInstanceArn);
        return Facts(state, stored, usage.Tasks, usage.Groups.Keys);
    }

    /// <param name="tasks">How many tasks not yet STOPPED the instance has.</param>
    /// <param name="groups">Their task groups.</param>
    public static InstanceFacts Facts(CoordinatorState state, StoredContainerInstance stored, int tasks, IEnumerable<string> groups)
    {
        var instance = stored.ContainerInstance;
        var attributes = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var attribute in MergedAttributes(stored))
        {
            attributes[attribute.Name] = attribute.HasValue ? attribute.Value : null;
        }

        return new InstanceFacts(
            instance.ContainerInstanceArn,
            instance.Ec2InstanceId,
            state.IsConnected(instance.ContainerInstanceArn),
            instance.VersionInfo?.AgentVersion ?? "",
            instance.RegisteredAt.ToDateTimeOffset(),
            tasks,
            attributes,
            [.. groups]);
    }

    public static IEnumerable<StoredContainerInstance> InCluster(CoordinatorState state, string cluster) =>
        state.ContainerInstances.Values.Where(i => i.Cluster == cluster);

    /// <summary>A container instance given as an id or ARN, within a cluster; ECS's error when there is none.</summary>
    public static StoredContainerInstance Find(CoordinatorState state, string reference, string cluster, ArnFormat arns, string field) =>
        state.ContainerInstances.GetValueOrDefault(Arn(reference, cluster, arns, field))
            ?? throw EcsException.InvalidParameter(field, $"container instance '{reference}' does not exist in cluster '{cluster}'.");

    private static string Arn(string reference, string cluster, ArnFormat arns, string field)
    {
        if (!reference.StartsWith("arn:", StringComparison.Ordinal))
        {
            return arns.ContainerInstance(cluster, reference);
        }

        if (!ArnFormat.TryParse(reference, out var type, out var id) || type != "container-instance" || id.Split('/') is not [var arnCluster, _])
        {
            throw EcsException.InvalidParameter(field, $"'{reference}' is not a container instance ARN (arn:aws:ecs:REGION:ACCOUNT:container-instance/CLUSTER/ID).");
        }

        return arnCluster == cluster
            ? reference
            : throw EcsException.InvalidParameter(field, $"'{reference}' belongs to cluster '{arnCluster}', not '{cluster}'.");
    }

    private static StoredContainerInstance Existing(CoordinatorState state, string arn, string cluster)
    {
        if (!arn.StartsWith("arn:", StringComparison.Ordinal))
        {
            throw EcsException.InvalidParameter("hello.containerInstanceArn", $"'{arn}' is not a container instance ARN.");
        }

        var known = state.ContainerInstances.GetValueOrDefault(Arn(arn, cluster, new ArnFormat(), "hello.containerInstanceArn"));
        if (known is null)
        {
            throw EcsException.Client("hello.containerInstanceArn",
                $"'{arn}' is not a container instance of this coordinator; to join as a new instance, remove the agent's instance identity (instance.json in its data directory).");
        }

        return known.ContainerInstance.Status == ContainerInstanceStatus.Inactive
            ? throw EcsException.Client("hello.containerInstanceArn", $"'{arn}' was deregistered; to join again as a new instance, remove the agent's instance identity (instance.json in its data directory).")
            : known;
    }

    private static StoredContainerInstance New(string cluster, string id, CommandContext context) => new()
    {
        Cluster = cluster,
        ContainerInstance = new ContainerInstance
        {
            ContainerInstanceArn = context.Arns.ContainerInstance(cluster, id),
            Ec2InstanceId = $"mi-{id[..Math.Min(17, id.Length)]}",
            Status = ContainerInstanceStatus.Active,
            RunningTasksCount = 0,
            PendingTasksCount = 0,
            RegisteredAt = Timestamp.FromDateTimeOffset(context.Now),
            Version = 0,
        },
    };

    private static void ValidateHello(AgentHello hello)
    {
        if (hello.Hostname.Length is 0 or > 255)
        {
            throw EcsException.InvalidParameter("hello.hostname", "is required (at most 255 characters).");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < hello.RegisteredResources.Count; i++)
        {
            var resource = hello.RegisteredResources[i];
            var field = $"hello.registeredResources[{i}]";
            if (!names.Add(resource.Name))
            {
                throw EcsException.InvalidParameter($"{field}.name", $"'{resource.Name}' is reported twice.");
            }

            switch (resource.Name)
            {
                case "CPU" when resource.Type != "INTEGER" || resource.IntegerValue is < 128 or > 1024 * 4096:
                    throw EcsException.InvalidParameter(field, $"CPU must be an INTEGER between 128 and {1024 * 4096} units (got {resource.IntegerValue}).");
                case "MEMORY" when resource.Type != "INTEGER" || resource.IntegerValue is < 64 or > 64 * 1024 * 1024:
                    throw EcsException.InvalidParameter(field, $"MEMORY must be an INTEGER between 64 and {64 * 1024 * 1024} MiB (got {resource.IntegerValue}).");
                case "PORTS" or "PORTS_UDP":
                    if (resource.Type != "STRINGSET" || resource.StringSetValue.Any(p => !int.TryParse(p, out var port) || port is < 1 or > 65535))
                    {
                        throw EcsException.InvalidParameter(field, $"{resource.Name} must be a STRINGSET of port numbers 1-65535.");
                    }

                    break;
            }
        }

        foreach (var required in new[] { "CPU", "MEMORY" })
        {
            if (!names.Contains(required))
            {
                throw EcsException.InvalidParameter("hello.registeredResources", $"{required} is required.");
            }
        }

        for (var i = 0; i < hello.Attributes.Count; i++)
        {
            var attribute = hello.Attributes[i];
            if (!AttributeName().IsMatch(attribute.Name) || attribute.Value.Length > 128)
            {
                throw EcsException.InvalidParameter($"hello.attributes[{i}]", $"'{attribute.Name}' is not a valid attribute (name: 1-128 of A-Z a-z 0-9 _ . - @ / :, value: at most 128 characters).");
            }
        }
    }

    private static void ValidateCustomAttribute(Api.V1.Attribute attribute, string field)
    {
        if (!AttributeName().IsMatch(attribute.Name))
        {
            throw EcsException.InvalidParameter($"{field}.name", $"'{attribute.Name}' is not valid: 1-128 of A-Z a-z 0-9 _ . - @ / :.");
        }

        if (ReservedPrefixes.Any(p => attribute.Name.StartsWith(p, StringComparison.Ordinal)))
        {
            throw EcsException.InvalidParameter($"{field}.name", $"'{attribute.Name}' is reserved for attributes the agent reports.");
        }

        if (attribute.HasValue && attribute.Value.Length > 128)
        {
            throw EcsException.InvalidParameter($"{field}.value", "at most 128 characters.");
        }
    }

    /// <summary>The instance an attribute targets (targetId as id or ARN), from the pending updates if this call already changed it.</summary>
    private static StoredContainerInstance Target(
        CoordinatorState state, Api.V1.Attribute attribute, string cluster, ArnFormat arns, string field, Dictionary<string, StoredContainerInstance> updates)
    {
        if (attribute.HasTargetType && attribute.TargetType != "container-instance")
        {
            throw EcsException.InvalidParameter($"{field}.targetType", "only container-instance is supported.");
        }

        if (!attribute.HasTargetId || attribute.TargetId.Length == 0)
        {
            throw EcsException.InvalidParameter($"{field}.targetId", "is required: the container instance's id or ARN.");
        }

        var arn = Arn(attribute.TargetId, cluster, arns, $"{field}.targetId");
        if (!updates.TryGetValue(arn, out var target))
        {
            var stored = state.ContainerInstances.GetValueOrDefault(arn);
            if (stored is null || stored.ContainerInstance.Status == ContainerInstanceStatus.Inactive)
            {
                throw EcsException.InvalidParameter($"{field}.targetId", $"container instance '{attribute.TargetId}' does not exist in cluster '{cluster}'.");
            }

            target = stored.Clone();
            target.ContainerInstance.Version++;
            updates[arn] = target;
        }

        return target;
    }

    private static List<StateChange> Puts(Dictionary<string, StoredContainerInstance> updates) =>
        [.. updates.Values.Select(u => new ContainerInstancePut(u))];

    public static IEnumerable<Api.V1.Attribute> MergedAttributes(StoredContainerInstance stored) =>
        stored.AgentAttributes.Where(a => stored.CustomAttributes.All(c => c.Name != a.Name)).Concat(stored.CustomAttributes);

    private static Api.V1.Attribute WithTarget(Api.V1.Attribute attribute, StoredContainerInstance instance)
    {
        var result = new Api.V1.Attribute { Name = attribute.Name, TargetType = "container-instance", TargetId = instance.ContainerInstance.ContainerInstanceArn };
        if (attribute.HasValue)
        {
            result.Value = attribute.Value;
        }

        return result;
    }

    private static void Replace<T>(Google.Protobuf.Collections.RepeatedField<T> target, IEnumerable<T> values)
    {
        target.Clear();
        target.Add(values);
    }
}
