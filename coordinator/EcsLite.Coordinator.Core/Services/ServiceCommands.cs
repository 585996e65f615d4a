using System.Text.RegularExpressions;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Clusters;
using EcsLite.Coordinator.Core.Placement;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.Tagging;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.Core.Validation;
using EcsLite.Store.V1;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.Services;

/// <summary>
/// CreateService, UpdateService, DeleteService, DescribeServices and ListServices. These only record
/// what the user wants (a deployment, a count); <see cref="ServiceScheduler"/> makes it so.
/// </summary>
public static partial class ServiceCommands
{
    /// <summary>ECS's service quota: at most 5,000 tasks per service.</summary>
    public const int MaxDesiredCount = 5000;

    public static Mutation<CreateServiceResponse> Create(CoordinatorState state, CreateServiceRequest request, CommandContext context, Random random)
    {
        ShapeRules.Validate(request);
        var cluster = ClusterCommands.Active(state, request.HasCluster ? request.Cluster : null);
        if (!NamePattern().IsMatch(request.ServiceName))
        {
            throw EcsException.InvalidParameter("serviceName", "up to 255 letters (uppercase and lowercase), numbers, underscores and hyphens are allowed.");
        }

        if (state.Services.TryGetValue(CoordinatorState.ServiceKey(cluster.ClusterName, request.ServiceName), out var existing)
            && existing.Service.Status != ServiceStatus.Inactive)
        {
            throw EcsException.InvalidParameter("serviceName", "Creation of service was not idempotent.");
        }

        var daemon = request.HasSchedulingStrategy && request.SchedulingStrategy == "DAEMON";
        if (daemon && request.HasDesiredCount)
        {
            throw EcsException.InvalidParameter("desiredCount", "a DAEMON service runs one task per instance; it takes no desiredCount.");
        }

        if (!daemon && !request.HasDesiredCount)
        {
            throw EcsException.InvalidParameter("desiredCount", "is required for a REPLICA service.");
        }

        if (request.DesiredCount is < 0 or > MaxDesiredCount)
        {
            throw EcsException.InvalidParameter("desiredCount", $"must be between 0 and {MaxDesiredCount}, ECS's limit of tasks per service (got {request.DesiredCount}).");
        }

        if (daemon && request.PlacementStrategy.Count > 0)
        {
            throw EcsException.InvalidParameter("placementStrategy", "a DAEMON service places one task on each instance; it takes no placement strategy (binpack, spread, random).");
        }

        if (request.DeploymentController is { HasType: true, Type: not "ECS" })
        {
            throw EcsException.InvalidParameter("deploymentController.type", $"'{request.DeploymentController.Type}' is not supported; EcsLite runs the rolling ECS deployment controller.");
        }

        var definition = ActiveDefinition(state, request.TaskDefinition);
        var launchType = TaskCommands.LaunchType(definition.TaskDefinition, request.HasLaunchType ? request.LaunchType : null);
        CheckPlacement(request.PlacementConstraints, request.PlacementStrategy);
        TaskPlacement.ParseConstraints(ServiceScheduler.Constraints(new Service(), definition.TaskDefinition), "taskDefinition.placementConstraints");
        TagRules.Validate(request.Tags, "tags");
        if (request.HasHealthCheckGracePeriodSeconds && request.HealthCheckGracePeriodSeconds < 0)
        {
            throw EcsException.InvalidParameter("healthCheckGracePeriodSeconds", "must not be negative.");
        }

        var service = new Service
        {
            ServiceArn = context.Arns.Service(cluster.ClusterName, request.ServiceName),
            ServiceName = request.ServiceName,
            ClusterArn = cluster.ClusterArn,
            Status = ServiceStatus.Active,
            DesiredCount = daemon ? 0 : request.DesiredCount,
            RunningCount = 0,
            PendingCount = 0,
            LaunchType = launchType,
            TaskDefinition = definition.TaskDefinition.TaskDefinitionArn,
            DeploymentConfiguration = Configuration(request.DeploymentConfiguration, null, daemon),
            CreatedAt = Timestamp.FromDateTimeOffset(context.Now),
            PlacementConstraints = { request.PlacementConstraints },
            PlacementStrategy = { request.PlacementStrategy },
            HealthCheckGracePeriodSeconds = request.HasHealthCheckGracePeriodSeconds ? request.HealthCheckGracePeriodSeconds : 0,
            SchedulingStrategy = daemon ? "DAEMON" : "REPLICA",
            DeploymentController = new DeploymentController { Type = "ECS" },
            Tags = { request.Tags },
            EnableECSManagedTags = request.HasEnableECSManagedTags && request.EnableECSManagedTags,
            PropagateTags = request.HasPropagateTags ? request.PropagateTags : "NONE",
            EnableExecuteCommand = request.HasEnableExecuteCommand && request.EnableExecuteCommand,
            LoadBalancers = { request.LoadBalancers },
            ServiceRegistries = { request.ServiceRegistries },
        };
        if (request.NetworkConfiguration is not null)
        {
            service.NetworkConfiguration = request.NetworkConfiguration;
        }

        ServiceReconciler.NewDeployment(service, service.TaskDefinition, context.Now, random);
        var stored = new StoredService { Service = service, Cluster = cluster.ClusterName };
        return new([new ServicePut(stored)], new CreateServiceResponse { Service = service });
    }

    /// <param name="emptyLists">Request members given as an empty list (JSON's [], which proto3 cannot tell from absent): placementStrategy and placementConstraints clear the service's, as on ECS.</param>
    public static Mutation<UpdateServiceResponse> Update(CoordinatorState state, UpdateServiceRequest request, CommandContext context, Random random, IReadOnlySet<string>? emptyLists = null)
    {
        ShapeRules.Validate(request);
        var cluster = ClusterCommands.Active(state, request.HasCluster ? request.Cluster : null);
        var stored = Find(state, request.Service, cluster.ClusterName, "service");
        if (stored.Service.Status != ServiceStatus.Active)
        {
            throw new EcsException(EcsErrorType.ServiceNotActiveException, "service: Service was not ACTIVE.", "service");
        }

        var next = stored.Clone();
        var service = next.Service;
        var daemon = service.SchedulingStrategy == "DAEMON";
        if (request.HasDesiredCount)
        {
            if (daemon)
            {
                throw EcsException.InvalidParameter("desiredCount", "a DAEMON service runs one task per instance; it takes no desiredCount.");
            }

            if (request.DesiredCount is < 0 or > MaxDesiredCount)
            {
                throw EcsException.InvalidParameter("desiredCount", $"must be between 0 and {MaxDesiredCount}, ECS's limit of tasks per service (got {request.DesiredCount}).");
            }

            service.DesiredCount = request.DesiredCount;
        }

        if (request.DeploymentConfiguration is not null)
        {
            service.DeploymentConfiguration = Configuration(request.DeploymentConfiguration, service.DeploymentConfiguration, daemon);
        }

        // Repeated fields cannot say "absent" in proto3: a non-empty list replaces the service's.
        if (request.PlacementConstraints.Count > 0 || request.PlacementStrategy.Count > 0)
        {
            if (daemon && request.PlacementStrategy.Count > 0)
            {
                throw EcsException.InvalidParameter("placementStrategy", "a DAEMON service takes no placement strategy.");
            }

            CheckPlacement(request.PlacementConstraints, request.PlacementStrategy);
            if (request.PlacementConstraints.Count > 0)
            {
                service.PlacementConstraints.Clear();
                service.PlacementConstraints.Add(request.PlacementConstraints);
            }

            if (request.PlacementStrategy.Count > 0)
            {
                service.PlacementStrategy.Clear();
                service.PlacementStrategy.Add(request.PlacementStrategy);
            }
        }

        if (emptyLists?.Contains("placementConstraints") == true)
        {
            service.PlacementConstraints.Clear();
        }

        if (emptyLists?.Contains("placementStrategy") == true)
        {
            service.PlacementStrategy.Clear();
        }

        if (request.HasHealthCheckGracePeriodSeconds)
        {
            if (request.HealthCheckGracePeriodSeconds < 0)
            {
                throw EcsException.InvalidParameter("healthCheckGracePeriodSeconds", "must not be negative.");
            }

            service.HealthCheckGracePeriodSeconds = request.HealthCheckGracePeriodSeconds;
        }

        if (request.HasPropagateTags)
        {
            service.PropagateTags = request.PropagateTags;
        }

        if (request.HasEnableECSManagedTags)
        {
            service.EnableECSManagedTags = request.EnableECSManagedTags;
        }

        // A new task definition, or forceNewDeployment, starts a rolling deployment.
        var definition = request.HasTaskDefinition && request.TaskDefinition.Length > 0
            ? ActiveDefinition(state, request.TaskDefinition).TaskDefinition
            : null;
        if (definition is not null)
        {
            TaskCommands.LaunchType(definition, service.LaunchType);
        }

        var primary = service.Deployments.First(d => d.Status == "PRIMARY");
        if ((definition is not null && definition.TaskDefinitionArn != primary.TaskDefinition) || (request.HasForceNewDeployment && request.ForceNewDeployment))
        {
            ServiceReconciler.NewDeployment(service, definition?.TaskDefinitionArn ?? primary.TaskDefinition, context.Now, random);
            next.Steady = false;
        }
        else
        {
            primary.DesiredCount = service.DesiredCount;
        }

        if (service.DesiredCount != stored.Service.DesiredCount)
        {
            next.Steady = false;
        }

        return new([new ServicePut(next)], new UpdateServiceResponse { Service = View(next, tags: false) });
    }

    public static Mutation<DeleteServiceResponse> Delete(CoordinatorState state, DeleteServiceRequest request)
    {
        ShapeRules.Validate(request);
        var cluster = ClusterCommands.Active(state, request.HasCluster ? request.Cluster : null);
        var stored = Find(state, request.Service, cluster.ClusterName, "service");
        if (stored.Service.Status == ServiceStatus.Inactive)
        {
            throw new EcsException(EcsErrorType.ServiceNotActiveException, "service: Service was not ACTIVE.", "service");
        }

        var force = request.HasForce && request.Force;
        if (stored.Service.SchedulingStrategy == "REPLICA" && stored.Service.DesiredCount > 0 && !force)
        {
            throw EcsException.InvalidParameter("service", "The service cannot be stopped while it is scaled above 0.");
        }

        if (stored.Service.Status == ServiceStatus.Draining)
        {
            return new([], new DeleteServiceResponse { Service = View(stored, tags: false) });
        }

        var next = stored.Clone();
        next.Service.Status = ServiceStatus.Draining;
        next.Service.DesiredCount = 0;
        next.Steady = false;
        return new([new ServicePut(next)], new DeleteServiceResponse { Service = View(next, tags: false) });
    }

    public static DescribeServicesResponse Describe(CoordinatorState state, DescribeServicesRequest request)
    {
        var cluster = ClusterCommands.Active(state, request.HasCluster ? request.Cluster : null);
        if (request.Services.Count is < 1 or > 10)
        {
            throw EcsException.InvalidParameter("services", $"name between 1 and 10 services (got {request.Services.Count}).");
        }

        if (request.Include.FirstOrDefault(i => i != "TAGS") is { } unknown)
        {
            throw EcsException.InvalidParameter("include", $"'{unknown}' is not one of TAGS.");
        }

        var response = new DescribeServicesResponse();
        foreach (var reference in request.Services)
        {
            if (TryFind(state, reference, cluster.ClusterName) is { } stored)
            {
                response.Services.Add(View(stored, request.Include.Contains("TAGS")));
            }
            else
            {
                response.Failures.Add(new Failure { Arn = reference, Reason = "MISSING" });
            }
        }

        return response;
    }

    public static ListServicesResponse List(CoordinatorState state, ListServicesRequest request)
    {
        ShapeRules.Validate(request);
        var cluster = ClusterCommands.Active(state, request.HasCluster ? request.Cluster : null);
        var services = state.Services.Values.Where(s =>
            s.Cluster == cluster.ClusterName
            && s.Service.Status != ServiceStatus.Inactive
            && (!request.HasLaunchType || s.Service.LaunchType == request.LaunchType)
            && (!request.HasSchedulingStrategy || s.Service.SchedulingStrategy == request.SchedulingStrategy));
        var (page, next) = Paging.Take(services, s => s.Service.ServiceName, request.HasMaxResults, request.MaxResults, request.HasNextToken ? request.NextToken : null);
        var response = new ListServicesResponse { ServiceArns = { page.Select(s => s.Service.ServiceArn) } };
        if (next is not null)
        {
            response.NextToken = next;
        }

        return response;
    }

    /// <summary>A service given as a name or ARN within a cluster, else ServiceNotFoundException.</summary>
    public static StoredService Find(CoordinatorState state, string reference, string cluster, string field) =>
        TryFind(state, reference, cluster)
        ?? throw new EcsException(EcsErrorType.ServiceNotFoundException, $"{field}: Service not found: '{reference}' in cluster '{cluster}'.", field);

    private static StoredService? TryFind(CoordinatorState state, string reference, string cluster)
    {
        var name = reference;
        if (reference.StartsWith("arn:", StringComparison.Ordinal))
        {
            // arn:...:service/CLUSTER/NAME (or the old form service/NAME)
            if (!ArnFormat.TryParse(reference, out var type, out var id) || type != "service")
            {
                return null;
            }

            var parts = id.Split('/');
            if (parts.Length == 2 && parts[0] != cluster)
            {
                return null;
            }

            name = parts[^1];
        }

        return state.Services.GetValueOrDefault(CoordinatorState.ServiceKey(cluster, name));
    }

    private static Service View(StoredService stored, bool tags)
    {
        var view = stored.Service.Clone();
        if (!tags)
        {
            view.Tags.Clear();
        }

        // A record from an older build may still hold drained deployments: ECS shows only those that matter.
        foreach (var drained in view.Deployments.Where(d => d.Status == "INACTIVE").ToList())
        {
            view.Deployments.Remove(drained);
        }

        return view;
    }

    private static StoredTaskDefinition ActiveDefinition(CoordinatorState state, string reference)
    {
        if (string.IsNullOrEmpty(reference))
        {
            throw EcsException.InvalidParameter("taskDefinition", "is required: a family, family:revision or task definition ARN.");
        }

        var stored = TaskDefinitionCommands.Resolve(state, reference, "taskDefinition");
        if (stored.TaskDefinition.Status != TaskDefinitionStatus.Active)
        {
            throw EcsException.Client("taskDefinition", $"TaskDefinition is inactive: '{reference}' was deregistered; use an ACTIVE revision.");
        }

        return stored;
    }

    private static void CheckPlacement(IReadOnlyCollection<PlacementConstraint> constraints, IReadOnlyCollection<PlacementStrategy> strategies)
    {
        if (constraints.Count > 10)
        {
            throw EcsException.InvalidParameter("placementConstraints", "at most 10 constraints may be given.");
        }

        if (strategies.Count > 5)
        {
            throw EcsException.InvalidParameter("placementStrategy", "at most 5 strategies may be given.");
        }

        TaskPlacement.ParseConstraints(constraints, "placementConstraints");
        TaskPlacement.ValidateStrategies(strategies, "placementStrategy");
    }

    /// <summary>
    /// ECS's defaults (REPLICA: 100% healthy, 200% at most; DAEMON: 0% and 100%), the request's values
    /// over the current ones, and the bounds: 0 to 100 healthy, at most at least 100, healthy not above at most.
    /// </summary>
    private static DeploymentConfiguration Configuration(DeploymentConfiguration? requested, DeploymentConfiguration? current, bool daemon)
    {
        var result = current?.Clone() ?? new DeploymentConfiguration
        {
            MinimumHealthyPercent = daemon ? 0 : 100,
            MaximumPercent = daemon ? 100 : 200,
            DeploymentCircuitBreaker = new DeploymentCircuitBreaker { Enable = false, Rollback = false },
        };
        if (requested is null)
        {
            return result;
        }

        if (requested.HasMinimumHealthyPercent)
        {
            result.MinimumHealthyPercent = requested.MinimumHealthyPercent;
        }

        if (requested.HasMaximumPercent)
        {
            result.MaximumPercent = requested.MaximumPercent;
        }

        if (requested.DeploymentCircuitBreaker is { } breaker)
        {
            result.DeploymentCircuitBreaker = new DeploymentCircuitBreaker { Enable = breaker.HasEnable && breaker.Enable, Rollback = breaker.HasRollback && breaker.Rollback };
        }

        if (result.MinimumHealthyPercent > result.MaximumPercent)
        {
            throw EcsException.InvalidParameter("deploymentConfiguration.minimumHealthyPercent",
                $"({result.MinimumHealthyPercent}) cannot be above maximumPercent ({result.MaximumPercent}).");
        }

        if (result.MinimumHealthyPercent is < 0 or > 100)
        {
            throw EcsException.InvalidParameter("deploymentConfiguration.minimumHealthyPercent", $"must be between 0 and 100 (got {result.MinimumHealthyPercent}).");
        }

        if (result.MaximumPercent < 100)
        {
            throw EcsException.InvalidParameter("deploymentConfiguration.maximumPercent", $"must be at least 100 (got {result.MaximumPercent}).");
        }

        return result;
    }

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,255}$")]
    private static partial Regex NamePattern();
}
