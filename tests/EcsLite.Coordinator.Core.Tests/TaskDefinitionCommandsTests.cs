using EcsLite.Api.V1;
using EcsLite.Coordinator.Core.State;
using EcsLite.Coordinator.Core.TaskDefinitions;
using EcsLite.Testing;
using static EcsLite.Coordinator.Core.Tests.Fixtures;

namespace EcsLite.Coordinator.Core.Tests;

public class TaskDefinitionCommandsTests
{
    private static CoordinatorState Register(CoordinatorState state, params RegisterTaskDefinitionRequest[] requests) =>
        requests.Aggregate(state, (s, r) => Run(s, x => TaskDefinitionCommands.Register(x, r, Context())).State);

    [Fact]
    public void Revisions_count_up_per_family_with_ECS_ARNs()
    {
        var state = CoordinatorState.Empty;
        (state, var first) = Run(state, s => TaskDefinitionCommands.Register(s, Simple("web"), Context()));
        (state, var second) = Run(state, s => TaskDefinitionCommands.Register(s, Simple("web"), Context()));
        (_, var other) = Run(state, s => TaskDefinitionCommands.Register(s, Simple("db"), Context()));

        Assert.Equal(1, first.TaskDefinition.Revision);
        Assert.Equal(2, second.TaskDefinition.Revision);
        Assert.Equal(1, other.TaskDefinition.Revision);
        Assert.Equal("arn:aws:ecs:local:000000000000:task-definition/web:2", second.TaskDefinition.TaskDefinitionArn);
        Assert.Equal("ACTIVE", second.TaskDefinition.Status);
        Assert.Equal(Now, second.TaskDefinition.RegisteredAt.ToDateTimeOffset());
    }

    [Fact]
    public void The_seed_example_gets_ECS_derived_fields_and_keeps_every_field_given()
    {
        var json = File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json"));
        var (_, response) = Run(CoordinatorState.Empty, s => TaskDefinitionCommands.Register(s, Parse(json), Context()));
        var td = response.TaskDefinition;

        Assert.Equal(["EC2", "FARGATE"], td.Compatibilities);
        Assert.Equal(["FARGATE"], td.RequiresCompatibilities);
        Assert.Contains(td.RequiresAttributes, a => a.Name == "ecs.capability.task-eni");
        Assert.Contains(td.RequiresAttributes, a => a.Name == "com.amazonaws.ecs.capability.logging-driver.awslogs");
        Assert.Contains(td.RequiresAttributes, a => a.Name == "ecs.capability.execution-role-awslogs");
        Assert.Equal("256", td.Cpu);
        Assert.Equal("512", td.Memory);
        Assert.Equal("LINUX", td.RuntimePlatform.OperatingSystemFamily);
        Assert.Equal("arn:aws:iam::012345678910:role/ecsTaskExecutionRole", td.ExecutionRoleArn);
        var container = Assert.Single(td.ContainerDefinitions);
        Assert.Equal(["sh", "-c"], container.EntryPoint);
        Assert.Equal("ecs", container.LogConfiguration.Options["awslogs-stream-prefix"]);
        Assert.Equal(80, container.PortMappings[0].HostPort);
    }

    [Fact]
    public void Units_are_stored_in_numeric_form_and_essential_defaults_to_true()
    {
        var request = Parse("""
            { "family": "units", "cpu": "0.5 vCPU", "memory": "1 GB",
              "containerDefinitions": [{ "name": "a", "image": "busybox" }, { "name": "b", "image": "busybox", "essential": false }] }
            """);
        var (_, response) = Run(CoordinatorState.Empty, s => TaskDefinitionCommands.Register(s, request, Context()));

        Assert.Equal("512", response.TaskDefinition.Cpu);
        Assert.Equal("1024", response.TaskDefinition.Memory);
        Assert.True(response.TaskDefinition.ContainerDefinitions[0].Essential);
        Assert.False(response.TaskDefinition.ContainerDefinitions[1].Essential);
        Assert.Equal(["EC2", "EXTERNAL"], response.TaskDefinition.Compatibilities);
    }

    [Fact]
    public void Describe_accepts_family_family_revision_and_ARN()
    {
        var state = Register(CoordinatorState.Empty, Simple("web", 64), Simple("web", 128), Simple("web", 256));
        (state, _) = Run(state, s => TaskDefinitionCommands.Deregister(s, new DeregisterTaskDefinitionRequest { TaskDefinition = "web:3" }, Context()));

        int Memory(string reference) => TaskDefinitionCommands.Describe(state, new DescribeTaskDefinitionRequest { TaskDefinition = reference })
            .TaskDefinition.ContainerDefinitions[0].Memory;

        Assert.Equal(128, Memory("web"));
        Assert.Equal(64, Memory("web:1"));
        Assert.Equal(256, Memory("web:3"));
        Assert.Equal(64, Memory("arn:aws:ecs:local:000000000000:task-definition/web:1"));
        var missing = Assert.Throws<EcsException>(() => TaskDefinitionCommands.Describe(state, new DescribeTaskDefinitionRequest { TaskDefinition = "web:9" }));
        Assert.Equal(EcsErrorType.ClientException, missing.ErrorType);
        var malformed = Assert.Throws<EcsException>(() => TaskDefinitionCommands.Describe(state, new DescribeTaskDefinitionRequest { TaskDefinition = "web:x" }));
        Assert.Equal(EcsErrorType.InvalidParameterException, malformed.ErrorType);
        Assert.Equal("taskDefinition", malformed.Field);
    }

    [Fact]
    public void A_family_whose_revisions_are_all_inactive_cannot_be_described_by_family()
    {
        var state = Register(CoordinatorState.Empty, Simple("job"));
        (state, _) = Run(state, s => TaskDefinitionCommands.Deregister(s, new DeregisterTaskDefinitionRequest { TaskDefinition = "job:1" }, Context()));

        Assert.Throws<EcsException>(() => TaskDefinitionCommands.Describe(state, new DescribeTaskDefinitionRequest { TaskDefinition = "job" }));
        Assert.Equal("INACTIVE", TaskDefinitionCommands.Describe(state, new DescribeTaskDefinitionRequest { TaskDefinition = "job:1" }).TaskDefinition.Status);
    }

    [Fact]
    public void Deregister_needs_a_revision()
    {
        var state = Register(CoordinatorState.Empty, Simple("job"));
        var error = Assert.Throws<EcsException>(() => TaskDefinitionCommands.Deregister(state, new DeregisterTaskDefinitionRequest { TaskDefinition = "job" }, Context()));
        Assert.Equal(EcsErrorType.InvalidParameterException, error.ErrorType);
    }

    [Fact]
    public void List_filters_by_family_and_status_sorts_and_pages()
    {
        var state = Register(CoordinatorState.Empty, Simple("a"), Simple("b"), Simple("a"), Simple("c"), Simple("a"));
        (state, _) = Run(state, s => TaskDefinitionCommands.Deregister(s, new DeregisterTaskDefinitionRequest { TaskDefinition = "a:2" }, Context()));

        string[] List(ListTaskDefinitionsRequest request) => [.. TaskDefinitionCommands.List(state, request).TaskDefinitionArns.Select(a => a.Split('/')[1])];

        Assert.Equal(["a:1", "a:3", "b:1", "c:1"], List(new()));
        Assert.Equal(["c:1", "b:1", "a:3", "a:1"], List(new() { Sort = "DESC" }));
        Assert.Equal(["a:1", "a:3"], List(new() { FamilyPrefix = "a" }));
        Assert.Equal(["a:2"], List(new() { Status = "INACTIVE" }));

        var pages = new List<string>();
        string? token = null;
        do
        {
            var request = new ListTaskDefinitionsRequest { MaxResults = 1, Sort = "DESC" };
            if (token is not null)
            {
                request.NextToken = token;
            }

            var page = TaskDefinitionCommands.List(state, request);
            pages.AddRange(page.TaskDefinitionArns.Select(a => a.Split('/')[1]));
            token = page.HasNextToken ? page.NextToken : null;
        }
        while (token is not null);

        Assert.Equal(["c:1", "b:1", "a:3", "a:1"], pages);
        var badToken = Assert.Throws<EcsException>(() => TaskDefinitionCommands.List(state, new() { NextToken = "garbage!" }));
        Assert.Equal("nextToken", badToken.Field);
        var badMax = Assert.Throws<EcsException>(() => TaskDefinitionCommands.List(state, new() { MaxResults = 101 }));
        Assert.Equal("maxResults", badMax.Field);
    }

    [Fact]
    public void Families_are_listed_by_prefix_and_by_whether_they_have_active_revisions()
    {
        var state = Register(CoordinatorState.Empty, Simple("web-front"), Simple("web-back"), Simple("db"));
        (state, _) = Run(state, s => TaskDefinitionCommands.Deregister(s, new DeregisterTaskDefinitionRequest { TaskDefinition = "db:1" }, Context()));

        string[] Families(ListTaskDefinitionFamiliesRequest request) => [.. TaskDefinitionCommands.ListFamilies(state, request).Families];

        Assert.Equal(["web-back", "web-front"], Families(new()));
        Assert.Equal(["web-back", "web-front"], Families(new() { FamilyPrefix = "web" }));
        Assert.Equal(["db"], Families(new() { Status = "INACTIVE" }));
        Assert.Equal(["db", "web-back", "web-front"], Families(new() { Status = "ALL" }));
    }

    [Fact]
    public void Only_inactive_revisions_are_deleted_and_their_numbers_are_never_reused()
    {
        var state = Register(CoordinatorState.Empty, Simple("app"), Simple("app"));
        (state, _) = Run(state, s => TaskDefinitionCommands.Deregister(s, new DeregisterTaskDefinitionRequest { TaskDefinition = "app:2" }, Context()));
        var request = new DeleteTaskDefinitionsRequest { TaskDefinitions = { "app:1", "app:2", "app:7" } };
        (state, var deleted) = Run(state, s => TaskDefinitionCommands.Delete(s, request, Context(5)));

        var gone = Assert.Single(deleted.TaskDefinitions);
        Assert.Equal("DELETE_IN_PROGRESS", gone.Status);
        Assert.Equal(Now.AddSeconds(5), gone.DeleteRequestedAt.ToDateTimeOffset());
        Assert.Equal(["TASK_DEFINITION_IS_ACTIVE", "TASK_DEFINITION_NOT_FOUND"], deleted.Failures.Select(f => f.Reason));
        Assert.Throws<EcsException>(() => TaskDefinitionCommands.Describe(state, new() { TaskDefinition = "app:2" }));

        (_, var next) = Run(state, s => TaskDefinitionCommands.Register(s, Simple("app"), Context()));
        Assert.Equal(3, next.TaskDefinition.Revision);
    }

    [Fact]
    public void The_latest_active_revision_is_kept_right_through_any_history()
    {
        // Property: after any sequence of registrations, deregistrations and deletions, the family's
        // cached LatestActive equals the newest ACTIVE revision found by scanning all of them.
        var random = new Random(20261125);
        for (var round = 0; round < 200; round++)
        {
            var state = CoordinatorState.Empty;
            for (var step = 0; step < 30; step++)
            {
                var family = state.Family("f");
                var revisions = family.Revisions.Keys.ToList();
                var choice = random.Next(3);
                if (choice == 0 || revisions.Count == 0)
                {
                    state = Register(state, Simple("f"));
                }
                else if (choice == 1)
                {
                    var target = revisions[random.Next(revisions.Count)];
                    (state, _) = Run(state, s => TaskDefinitionCommands.Deregister(s, new() { TaskDefinition = $"f:{target}" }, Context()));
                }
                else
                {
                    var target = revisions[random.Next(revisions.Count)];
                    (state, _) = Run(state, s => TaskDefinitionCommands.Delete(s, new() { TaskDefinitions = { $"f:{target}" } }, Context()));
                }

                var expected = state.Family("f").Revisions.Values.LastOrDefault(d => d.TaskDefinition.Status == "ACTIVE");
                Assert.Equal(expected?.TaskDefinition.Revision, state.Family("f").LatestActive?.TaskDefinition.Revision);
            }
        }
    }
}
