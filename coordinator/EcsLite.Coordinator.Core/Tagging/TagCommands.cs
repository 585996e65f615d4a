using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Store.V1;
using Google.Protobuf.Collections;

namespace EcsLite.Coordinator.Core.Tagging;

/// <summary>TagResource, UntagResource and ListTagsForResource over clusters, task definitions, tasks and services.</summary>
public static class TagCommands
{
    public static Mutation<TagResourceResponse> Tag(CoordinatorState state, TagResourceRequest request)
    {
        ShapeRules.Validate(request);
        TagRules.Validate(request.Tags, "tags");
        var change = Update(state, request.ResourceArn, tags => TagRules.Merge(tags, request.Tags, "tags"));
        return new([change], new TagResourceResponse());
    }

    public static Mutation<UntagResourceResponse> Untag(CoordinatorState state, UntagResourceRequest request)
    {
        ShapeRules.Validate(request);
        var remove = request.TagKeys.ToHashSet(StringComparer.Ordinal);
        var change = Update(state, request.ResourceArn, tags => tags.Where(t => !remove.Contains(t.Key)).Select(t => t.Clone()).ToList());
        return new([change], new UntagResourceResponse());
    }

    public static ListTagsForResourceResponse List(CoordinatorState state, ListTagsForResourceRequest request)
    {
        ShapeRules.Validate(request);
        var response = new ListTagsForResourceResponse();
        var resource = Find(state, request.ResourceArn);
        response.Tags.Add(resource.Cluster?.Tags ?? resource.TaskDefinition?.Tags ?? resource.Task?.Task.Tags ?? resource.Service!.Service.Tags);
        return response;
    }

    private static StateChange Update(CoordinatorState state, string arn, Func<IEnumerable<Tag>, List<Tag>> change)
    {
        static void Retag(RepeatedField<Tag> tags, Func<IEnumerable<Tag>, List<Tag>> change)
        {
            var next = change(tags);
            tags.Clear();
            tags.Add(next);
        }

        var resource = Find(state, arn);
        if (resource.Cluster is { } cluster)
        {
            var updated = cluster.Clone();
            Retag(updated.Tags, change);
            return new ClusterPut(updated);
        }

        if (resource.Task is { } task)
        {
            var updated = TaskCommands.Changing(task);
            Retag(updated.Task.Tags, change);
            updated.Task.Version++; // every write of a task is an event with a newer version
            return new TaskPut(updated);
        }

        if (resource.Service is { } service)
        {
            var updated = service.Clone();
            Retag(updated.Service.Tags, change);
            return new ServicePut(updated);
        }

        var definition = resource.TaskDefinition!.Clone();
        Retag(definition.Tags, change);
        return new TaskDefinitionPut(definition);
    }

    private static (Cluster? Cluster, StoredTaskDefinition? TaskDefinition, StoredTask? Task, StoredService? Service) Find(CoordinatorState state, string arn)
    {
        if (!ArnFormat.TryParse(arn, out var type, out var id))
        {
            throw EcsException.InvalidParameter("resourceArn", $"'{arn}' is not an ECS resource ARN.");
        }

        switch (type)
        {
            case "cluster":
                return (ClusterCommands.Active(state, id, "resourceArn"), null, null, null);
            case "task-definition":
                var (family, revision) = TaskDefinitionCommands.ParseReference(id, "resourceArn", revisionRequired: true);
                var stored = state.Families.GetValueOrDefault(family)?.Revisions.GetValueOrDefault(revision!.Value)
                    ?? throw new EcsException(EcsErrorType.ResourceNotFoundException, $"resourceArn: the task definition '{arn}' does not exist.", "resourceArn");
                return (null, stored, null, null);
            case "task":
                return (null, null, state.Tasks.GetValueOrDefault(arn)
                    ?? throw new EcsException(EcsErrorType.ResourceNotFoundException, $"resourceArn: the task '{arn}' does not exist.", "resourceArn"), null);
            case "service" when id.Split('/') is [var cluster, var name]:
                return (null, null, null, state.Services.GetValueOrDefault(CoordinatorState.ServiceKey(cluster, name))
                    ?? throw new EcsException(EcsErrorType.ResourceNotFoundException, $"resourceArn: the service '{arn}' does not exist.", "resourceArn"));
            default:
                throw EcsException.InvalidParameter("resourceArn", $"resources of type '{type}' cannot be tagged here; EcsLite tags clusters, task definitions, tasks and services.");
        }
    }
}
