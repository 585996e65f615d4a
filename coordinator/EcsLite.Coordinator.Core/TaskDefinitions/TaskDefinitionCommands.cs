using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Store.V1;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.TaskDefinitions;

/// <summary>ECS's task definition actions as pure functions of the state.</summary>
public static class TaskDefinitionCommands
{
    public static Mutation<RegisterTaskDefinitionResponse> Register(CoordinatorState state, RegisterTaskDefinitionRequest request, CommandContext context)
    {
        var size = TaskDefinitionValidator.Validate(request);
        var family = state.Family(request.Family);
        var revision = family.LastRevision + 1;

        var definition = new TaskDefinition();
        ProtoCopy.SameNamedFields(request, definition);
        if (size.Cpu is { } cpu)
        {
            definition.Cpu = cpu.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        if (size.Memory is { } memory)
        {
            definition.Memory = memory.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        foreach (var container in definition.ContainerDefinitions.Where(c => !c.HasEssential))
        {
            container.Essential = true;
        }

        definition.Revision = revision;
        definition.TaskDefinitionArn = context.Arns.TaskDefinition(request.Family, revision);
        definition.Status = TaskDefinitionStatus.Active;
        definition.RegisteredAt = Timestamp.FromDateTimeOffset(context.Now);
        definition.Compatibilities.Add(TaskDefinitionTraits.Compatibilities(definition, size));
        definition.RequiresAttributes.Add(TaskDefinitionTraits.RequiredAttributes(definition, size));

        var stored = new StoredTaskDefinition { TaskDefinition = definition };
        stored.Tags.Add(request.Tags);
        var response = new RegisterTaskDefinitionResponse { TaskDefinition = definition };
        response.Tags.Add(request.Tags);
        return new([new FamilyPut(request.Family, revision), new TaskDefinitionPut(stored)], response);
    }

    public static DescribeTaskDefinitionResponse Describe(CoordinatorState state, DescribeTaskDefinitionRequest request)
    {
        ShapeRules.Validate(request);
        var stored = Resolve(state, request.TaskDefinition, "taskDefinition");
        var response = new DescribeTaskDefinitionResponse { TaskDefinition = stored.TaskDefinition };
        if (request.Include.Contains("TAGS"))
        {
            response.Tags.Add(stored.Tags);
        }

        return response;
    }

    /// <summary>
    /// A task definition named as a family (its newest ACTIVE revision), family:revision or an ARN;
    /// ECS's ClientException when there is none.
    /// </summary>
    public static StoredTaskDefinition Resolve(CoordinatorState state, string reference, string field)
    {
        var (familyName, revision) = ParseReference(reference, field, revisionRequired: false);
        if (state.Families.TryGetValue(familyName, out var family))
        {
            var found = revision is { } r ? family.Revisions.GetValueOrDefault(r) : family.LatestActive;
            if (found is not null)
            {
                return found;
            }
        }

        throw new EcsException(EcsErrorType.ClientException, $"{field}: unable to describe task definition '{reference}': it does not exist{(revision is null ? " or has no ACTIVE revision" : "")}.", field);
    }

    public static (string Family, int? Revision) ParseReference(string reference, string field, bool revisionRequired)
    {
        var text = reference;
        if (reference.StartsWith("arn:", StringComparison.Ordinal))
        {
            if (!ArnFormat.TryParse(reference, out var type, out var id) || type != "task-definition")
            {
                throw EcsException.InvalidParameter(field, $"'{reference}' is not a task definition ARN.");
            }

            text = id;
        }

        var colon = text.LastIndexOf(':');
        var family = colon < 0 ? text : text[..colon];
        if (!TaskDefinitionValidator.NamePattern().IsMatch(family))
        {
            throw EcsException.InvalidParameter(field, $"'{reference}' is not a task definition family, family:revision or ARN.");
        }

        if (colon < 0)
        {
            return revisionRequired
                ? throw EcsException.InvalidParameter(field, $"'{reference}' needs a revision: use family:revision or the full ARN.")
                : (family, null);
        }

        if (!int.TryParse(text[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var revision) || revision < 1)
        {
            throw EcsException.InvalidParameter(field, $"'{text[(colon + 1)..]}' is not a valid revision number in '{reference}'.");
        }

        return (family, revision);
    }

    public static ListTaskDefinitionsResponse List(CoordinatorState state, ListTaskDefinitionsRequest request)
    {
        ShapeRules.Validate(request);
        var status = request.HasStatus ? request.Status : TaskDefinitionStatus.Active;
        var descending = request.Sort == "DESC";
        IEnumerable<TaskDefinitionFamily> families = state.Families.Values;
        if (request.HasFamilyPrefix)
        {
            // ECS filters ListTaskDefinitions by the full family name despite the member's name.
            families = state.Families.TryGetValue(request.FamilyPrefix, out var only) ? [only] : [];
        }

        var ordered = descending
            ? families.Reverse().SelectMany(f => f.Revisions.Values.Reverse())
            : families.SelectMany(f => f.Revisions.Values);
        var matching = ordered.Where(d => d.TaskDefinition.Status == status);

        var (page, next) = Paging.Take(matching, SortKey, request.HasMaxResults, request.MaxResults, request.NextToken,
            descending ? Descending.Instance : StringComparer.Ordinal);
        var response = new ListTaskDefinitionsResponse();
        response.TaskDefinitionArns.Add(page.Select(d => d.TaskDefinition.TaskDefinitionArn));
        if (next is not null)
        {
            response.NextToken = next;
        }

        return response;
    }

    public static ListTaskDefinitionFamiliesResponse ListFamilies(CoordinatorState state, ListTaskDefinitionFamiliesRequest request)
    {
        ShapeRules.Validate(request);
        var status = request.HasStatus ? request.Status : TaskDefinitionStatus.Active;
        var families = state.Families.Values
            .Where(f => f.Revisions.Count > 0)
            .Where(f => !request.HasFamilyPrefix || f.Name.StartsWith(request.FamilyPrefix, StringComparison.Ordinal))
            .Where(f => status switch
            {
                TaskDefinitionStatus.Active => f.HasActive,
                TaskDefinitionStatus.Inactive => !f.HasActive,
                _ => true,
            });
        var (page, next) = Paging.Take(families, f => f.Name, request.HasMaxResults, request.MaxResults, request.NextToken);
        var response = new ListTaskDefinitionFamiliesResponse();
        response.Families.Add(page.Select(f => f.Name));
        if (next is not null)
        {
            response.NextToken = next;
        }

        return response;
    }

    public static Mutation<DeregisterTaskDefinitionResponse> Deregister(CoordinatorState state, DeregisterTaskDefinitionRequest request, CommandContext context)
    {
        ShapeRules.Validate(request);
        ParseReference(request.TaskDefinition, "taskDefinition", revisionRequired: true);
        var stored = Resolve(state, request.TaskDefinition, "taskDefinition");
        if (stored.TaskDefinition.Status != TaskDefinitionStatus.Active)
        {
            return new([], new DeregisterTaskDefinitionResponse { TaskDefinition = stored.TaskDefinition });
        }

        var updated = stored.Clone();
        updated.TaskDefinition.Status = TaskDefinitionStatus.Inactive;
        updated.TaskDefinition.DeregisteredAt = Timestamp.FromDateTimeOffset(context.Now);
        return new([new TaskDefinitionPut(updated)], new DeregisterTaskDefinitionResponse { TaskDefinition = updated.TaskDefinition });
    }

    /// <summary>
    /// ECS deletes only INACTIVE revisions; each is answered as DELETE_IN_PROGRESS. Nothing can reference
    /// a revision yet, so it is removed at once; the family keeps its counter so the number is never reused.
    /// </summary>
    public static Mutation<DeleteTaskDefinitionsResponse> Delete(CoordinatorState state, DeleteTaskDefinitionsRequest request, CommandContext context)
    {
        ShapeRules.Validate(request);
        if (request.TaskDefinitions.Count > 10)
        {
            throw EcsException.InvalidParameter("taskDefinitions", $"at most 10 task definitions can be deleted at once (got {request.TaskDefinitions.Count}).");
        }

        var changes = new List<StateChange>();
        var response = new DeleteTaskDefinitionsResponse();
        for (var i = 0; i < request.TaskDefinitions.Count; i++)
        {
            var reference = request.TaskDefinitions[i];
            var (familyName, revision) = ParseReference(reference, $"taskDefinitions[{i}]", revisionRequired: true);
            var stored = state.Families.GetValueOrDefault(familyName)?.Revisions.GetValueOrDefault(revision!.Value);
            if (stored is not null && response.TaskDefinitions.Any(d => d.TaskDefinitionArn == stored.TaskDefinition.TaskDefinitionArn))
            {
                continue;
            }

            if (stored is null)
            {
                response.Failures.Add(new Failure { Arn = context.Arns.TaskDefinition(familyName, revision!.Value), Reason = "TASK_DEFINITION_NOT_FOUND", Detail = "The specified task definition does not exist." });
                continue;
            }

            if (stored.TaskDefinition.Status == TaskDefinitionStatus.Active)
            {
                response.Failures.Add(new Failure { Arn = stored.TaskDefinition.TaskDefinitionArn, Reason = "TASK_DEFINITION_IS_ACTIVE", Detail = "The specified task definition is still in ACTIVE status. Deregister it first." });
                continue;
            }

            var deleted = stored.TaskDefinition.Clone();
            deleted.Status = TaskDefinitionStatus.DeleteInProgress;
            deleted.DeleteRequestedAt = Timestamp.FromDateTimeOffset(context.Now);
            response.TaskDefinitions.Add(deleted);
            changes.Add(new TaskDefinitionRemoved(familyName, revision!.Value));

            // Tasks of the revision keep running it; their store records named it, so they are written
            // again, now holding their copy of it (see CoordinatorState.RunsRegistered).
            changes.AddRange(state.Tasks.Values
                .Where(t => t.Task.TaskDefinitionArn == stored.TaskDefinition.TaskDefinitionArn)
                .Select(t =>
                {
                    var rewritten = Tasks.TaskCommands.Changing(t);
                    rewritten.Task.Version++; // every write of a task is an event with a newer version
                    return new TaskPut(rewritten);
                }));
        }

        return new(changes, response);
    }

    public static string SortKey(StoredTaskDefinition d) =>
        $"{d.TaskDefinition.Family}\u0000{d.TaskDefinition.Revision:D10}";

    private sealed class Descending : StringComparer
    {
        public static readonly Descending Instance = new();

        public override int Compare(string? x, string? y) => Ordinal.Compare(y, x);

        public override bool Equals(string? x, string? y) => Ordinal.Equals(x, y);

        public override int GetHashCode(string obj) => Ordinal.GetHashCode(obj);
    }
}
