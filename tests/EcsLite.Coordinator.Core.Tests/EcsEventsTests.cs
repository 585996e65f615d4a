using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.Events;
using EcsLite.Coordinator.Core.Services;
using EcsLite.Store.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace EcsLite.Coordinator.Core.Tests;

public sealed class EcsEventsTests
{
    private static readonly ArnFormat Arns = new("eu-west-1", "111122223333");

    [Fact]
    public void A_task_write_is_a_task_state_change_in_EventBridge_s_envelope_with_the_task_as_detail()
    {
        var task = new StoredTask
        {
            Cluster = "default",
            Task = new Api.V1.Task
            {
                TaskArn = Arns.Task("default", "abc"), ClusterArn = Arns.Cluster("default"), LastStatus = "RUNNING", DesiredStatus = "RUNNING",
                Version = 3, CreatedAt = Timestamp.FromDateTimeOffset(Fixtures.Now), StartedAt = Timestamp.FromDateTimeOffset(Fixtures.Now.AddSeconds(2.5)),
                Tags = { new Tag { Key = "team", Value = "a" } },
            },
        };

        var e = EcsEvents.ForTask(task, 42, Arns);

        var json = JsonFormatter.Default.Format(e);
        Assert.Contains("\"detail-type\": \"ECS Task State Change\"", json, StringComparison.Ordinal);
        Assert.Equal(("0", "aws.ecs", "111122223333", "eu-west-1"), (e.Version, e.Source, e.Account, e.Region));
        Assert.Equal([task.Task.TaskArn], e.Resources);
        Assert.Equal(Fixtures.Now.AddSeconds(2), e.Time.ToDateTimeOffset()); // whole seconds, as EventBridge writes them
        Assert.Equal("RUNNING", e.Detail.Fields["lastStatus"].StringValue);
        Assert.Equal(3, e.Detail.Fields["version"].NumberValue);              // a number, as ECS sends it
        Assert.Equal("2026-11-25T12:00:02.500Z", e.Detail.Fields["updatedAt"].StringValue);
        Assert.False(e.Detail.Fields.ContainsKey("tags"));
        Assert.Equal(e.Id, EcsEvents.ForTask(task, 42, Arns).Id);           // read again, the same event
        Assert.NotEqual(e.Id, EcsEvents.ForTask(task, 43, Arns).Id);
    }

    [Fact]
    public void A_container_instance_write_carries_its_merged_attributes_and_version_but_not_what_is_not_stored()
    {
        var instance = new StoredContainerInstance
        {
            Cluster = "edge",
            ContainerInstance = new ContainerInstance
            {
                ContainerInstanceArn = Arns.ContainerInstance("edge", "i1"), Status = "DRAINING", Version = 7,
                RegisteredResources = { new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = 2048 } },
                RemainingResources = { new Resource { Name = "CPU", Type = "INTEGER", IntegerValue = 2048 } },
            },
            AgentAttributes = { new Api.V1.Attribute { Name = "ecs.cpu-architecture", Value = "arm64" } },
            CustomAttributes = { new Api.V1.Attribute { Name = "rack", Value = "3" } },
        };

        var e = EcsEvents.ForContainerInstance(instance, 9, Arns);

        Assert.Equal(EcsEvents.ContainerInstanceStateChange, e.DetailType);
        Assert.Equal("DRAINING", e.Detail.Fields["status"].StringValue);
        Assert.Equal(7, e.Detail.Fields["version"].NumberValue);
        Assert.Equal(Arns.Cluster("edge"), e.Detail.Fields["clusterArn"].StringValue);
        Assert.Equal(["ecs.cpu-architecture", "rack"], e.Detail.Fields["attributes"].ListValue.Values.Select(a => a.StructValue.Fields["name"].StringValue));
        Assert.False(e.Detail.Fields.ContainsKey("remainingResources"));
    }

    private static StoredService Service(string rollout, bool steady, params string[] said)
    {
        var service = new StoredService
        {
            Cluster = "default",
            Steady = steady,
            Service = new Service
            {
                ServiceName = "web", ServiceArn = Arns.Service("default", "web"), Status = "ACTIVE",
                Deployments = { new Deployment { Id = "ecs-svc/1", Status = "PRIMARY", RolloutState = rollout, RolloutStateReason = $"ECS deployment ecs-svc/1 {rollout}." } },
            },
        };
        foreach (var message in said)
        {
            ServiceReconciler.Say(service.Service, Fixtures.Now, message);
        }

        return service;
    }

    [Fact]
    public void A_new_service_s_first_deployment_is_in_progress()
    {
        var actions = EcsEvents.ServiceActions(null, Service("IN_PROGRESS", false), Fixtures.Now);

        var action = Assert.Single(actions);
        Assert.Equal((EcsEvents.DeploymentStateChange, "INFO", "SERVICE_DEPLOYMENT_IN_PROGRESS", "ecs-svc/1"), (action.DetailType, action.EventType, action.EventName, action.DeploymentId));
    }

    [Fact]
    public void A_service_write_says_the_deployment_that_completed_the_steady_state_reached_and_the_scheduler_s_failures_once()
    {
        var before = Service("IN_PROGRESS", false, "(service web) has started 2 tasks: (task a) (task b).");
        var failure = new Failure { Arn = Arns.ContainerInstance("default", "i1"), Reason = "RESOURCE:MEMORY" };
        var after = before.Clone();
        after.Service.Deployments[0].RolloutState = "COMPLETED";
        after.Steady = true;
        ServiceReconciler.Say(after.Service, Fixtures.Now, ServiceScheduler.UnableToPlace("web", failure));
        ServiceReconciler.Say(after.Service, Fixtures.Now, "(service web) has stopped 1 running tasks: (task c).");
        ServiceReconciler.Say(after.Service, Fixtures.Now, "(service web) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.");
        ServiceReconciler.Say(after.Service, Fixtures.Now, "(service web) is unable to schedule tasks: the task definition web:3 is INACTIVE.");

        var actions = EcsEvents.ServiceActions(before, after, Fixtures.Now);

        Assert.Equal(
            ["SERVICE_DEPLOYMENT_COMPLETED", "SERVICE_TASK_PLACEMENT_FAILURE", "TASKS_STOPPED", "SERVICE_TASK_START_IMPAIRED", "SERVICE_TASK_CONFIGURATION_FAILURE", "SERVICE_STEADY_STATE"],
            actions.Select(a => a.EventName));
        Assert.Equal(["RESOURCE:MEMORY"], actions[1].Reasons);
        Assert.Equal(["the task definition web:3 is INACTIVE."], actions[4].Reasons);
        Assert.Equal(["ERROR", "WARN"], new[] { actions[1].EventType, actions[3].EventType });
        Assert.Empty(EcsEvents.ServiceActions(after, after.Clone(), Fixtures.Now)); // written again unchanged: nothing new

        var events = EcsEvents.ForService(WithActions(after, actions), 5, Arns).ToList();
        Assert.Equal(EcsEvents.DeploymentStateChange, events[0].DetailType);
        Assert.Equal("ecs-svc/1", events[0].Detail.Fields["deploymentId"].StringValue);
        Assert.All(events.Skip(1), e => Assert.Equal(EcsEvents.ServiceAction, e.DetailType));
        Assert.Equal(Arns.Cluster("default"), events[1].Detail.Fields["clusterArn"].StringValue);
        Assert.Equal(events.Count, events.Select(e => e.Id).Distinct().Count());
    }

    [Fact]
    public void A_failed_deployment_is_an_error()
    {
        var before = Service("IN_PROGRESS", false);
        var after = before.Clone();
        after.Service.Deployments[0].RolloutState = "FAILED";

        var action = Assert.Single(EcsEvents.ServiceActions(before, after, Fixtures.Now));
        Assert.Equal(("ERROR", "SERVICE_DEPLOYMENT_FAILED"), (action.EventType, action.EventName));
    }

    [Theory]
    [InlineData("RESOURCE:CPU")]
    [InlineData("RESOURCE:MEMORY")]
    [InlineData("RESOURCE:PORTS")]
    [InlineData("AGENT")]
    [InlineData("ATTRIBUTE")]
    [InlineData("MemberOf")]
    public void A_placement_failure_event_names_its_reason(string reason)
    {
        var message = ServiceScheduler.UnableToPlace("web", new Failure { Arn = Arns.ContainerInstance("default", "i1"), Reason = reason });
        Assert.Equal(reason, ServiceScheduler.UnableToPlaceReason(message));
        Assert.Null(ServiceScheduler.UnableToPlaceReason("(service web) has reached a steady state."));
    }

    private static StoredService WithActions(StoredService service, List<StoredServiceAction> actions)
    {
        var record = service.Clone();
        record.Actions.Add(actions);
        return record;
    }
}
