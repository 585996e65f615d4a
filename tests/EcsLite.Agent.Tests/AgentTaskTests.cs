using EcsLite.Agent.Docker;
using EcsLite.Api.V1;
using EcsLite.Testing;
using Google.Protobuf;

namespace EcsLite.Agent.Tests;

/// <summary>
/// The real agent running tasks on the real Docker engine, driven through its real channel by a stand-in
/// coordinator (the coordinator's own RunTask comes with the next issue).
/// </summary>
public sealed class AgentTaskTests : IAsyncLifetime
{
    private FakeCoordinator _coordinator = null!;
    private AgentProcess _agent = null!;

    public async Task InitializeAsync()
    {
        await LocalImages.EnsureAsync();
        _coordinator = await FakeCoordinator.StartAsync();
        _agent = AgentProcess.Start(_coordinator.Address, _coordinator.JoinToken, environment: new Dictionary<string, string>
        {
            ["ECSLITE_HOST_PORT_ADDRESS"] = "127.0.0.1",
            ["ECS_IMAGE_PULL_BEHAVIOR"] = "prefer-cached", // the images are local; nothing is pulled from outside
            ["ECS_CONTAINER_STOP_TIMEOUT"] = "2s",
            ["ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION"] = "20s",
        });
        await _agent.WaitJoinedAsync();
    }

    public async Task DisposeAsync()
    {
        await _agent.DisposeAsync();
        await _coordinator.DisposeAsync();
        using var docker = DockerRuntime.Connect();
        foreach (var container in await docker.ListOwnedAsync(_coordinator.InstanceArn, default))
        {
            await docker.RemoveAsync(container.ID, default);
        }

        // The tasks' cgroups, now empty (the agent removes them only after its cleanup wait).
        foreach (var cgroup in _taskIds.SelectMany(id => Directory.EnumerateDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup")
                     .Select(c => Path.Combine(c, "ecslite", id))).Where(Directory.Exists))
        {
            try
            {
                Directory.Delete(cgroup);
            }
            catch (IOException)
            {
            }
        }
    }

    private readonly List<string> _taskIds = [];

    private string NewTaskArn()
    {
        var id = Guid.NewGuid().ToString("N");
        _taskIds.Add(id);
        return $"arn:aws:ecs:local:000000000000:task/default/{id}";
    }

    private static TaskDefinition Definition(string json, int revision = 1)
    {
        var definition = JsonParser.Default.Parse<TaskDefinition>(json);
        definition.Revision = revision;
        return definition;
    }

    [Fact]
    public async Task The_seed_task_definition_runs_unchanged_serves_its_page_and_stops()
    {
        var seed = Definition(File.ReadAllText(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json")));
        var arn = NewTaskArn();
        var network = $"ecs-task-{arn[(arn.LastIndexOf('/') + 1)..]}";
        await _coordinator.WantAsync(arn, "RUNNING", seed);

        var running = await _coordinator.WaitForAsync(arn, r => r.LastStatus == "RUNNING", TimeSpan.FromSeconds(60));
        var container = Assert.Single(running.Containers);
        Assert.Equal("RUNNING", container.LastStatus);
        Assert.NotEmpty(container.RuntimeId);
        var binding = Assert.Single(container.NetworkBindings);
        Assert.Equal((80, 80, "tcp"), (binding.ContainerPort, binding.HostPort, binding.Protocol));
        Assert.NotNull(running.PullStartedAt);
        Assert.NotNull(running.StartedAt);

        var page = await Eventually.PageAsync("http://127.0.0.1:80/", TimeSpan.FromSeconds(10));
        Assert.Contains("Congratulations!", page, StringComparison.Ordinal);

        // Task-level cpu 256 and memory 512 are hard limits on a cgroup that holds the task's containers.
        var taskId = arn[(arn.LastIndexOf('/') + 1)..];
        var (_, parent) = await ProcessRunner.RunAsync("docker", ["inspect", "--format", "{{.HostConfig.CgroupParent}}", container.RuntimeId]);
        Assert.Equal($"/ecslite/{taskId}", parent.Trim());
        if (File.Exists("/sys/fs/cgroup/cgroup.controllers"))
        {
            Assert.Equal("536870912", File.ReadAllText($"/sys/fs/cgroup/ecslite/{taskId}/memory.max").Trim());
            Assert.Equal("25000 100000", File.ReadAllText($"/sys/fs/cgroup/ecslite/{taskId}/cpu.max").Trim());
        }
        else
        {
            Assert.Equal("536870912", File.ReadAllText($"/sys/fs/cgroup/memory/ecslite/{taskId}/memory.limit_in_bytes").Trim());
            Assert.Equal("25000", File.ReadAllText($"/sys/fs/cgroup/cpu/ecslite/{taskId}/cpu.cfs_quota_us").Trim());
            Assert.True(Directory.EnumerateDirectories($"/sys/fs/cgroup/memory/ecslite/{taskId}").Any(d => d.Contains(container.RuntimeId, StringComparison.Ordinal)),
                "the container's memory cgroup is not inside the task's");
        }

        await _coordinator.WantAsync(arn, "STOPPED", seed);
        var stopped = await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(30));
        Assert.Equal("UserInitiated", stopped.StopCode);
        Assert.Equal("STOPPED", stopped.Containers[0].LastStatus);
        Assert.NotNull(stopped.StoppedAt);
        var (_, networks) = await ProcessRunner.RunAsync("docker", ["network", "ls", "--format", "{{.Name}}"]);
        Assert.DoesNotContain(network, networks, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_essential_container_exiting_stops_the_task_and_its_other_containers()
    {
        var definition = Definition($$"""
            {
              "family": "essential-exit",
              "containerDefinitions": [
                { "name": "main", "image": "{{LocalImages.Busybox}}", "memory": 32, "command": ["sh", "-c", "sleep 3; exit 2"] },
                { "name": "side", "image": "{{LocalImages.Busybox}}", "memory": 32, "essential": false, "command": ["sleep", "300"] },
                { "name": "brief", "image": "{{LocalImages.Busybox}}", "memory": 32, "essential": false, "command": ["true"] }
              ]
            }
            """);
        var arn = NewTaskArn();
        await _coordinator.WantAsync(arn, "RUNNING", definition);

        var stopped = await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(60));
        Assert.Equal("EssentialContainerExited", stopped.StopCode);
        Assert.Equal("Essential container in task exited", stopped.StoppedReason);
        var main = stopped.Containers.Single(c => c.ContainerName == "main");
        Assert.Equal(2, main.ExitCode);
        Assert.All(stopped.Containers, c => Assert.Equal("STOPPED", c.LastStatus));
        // The non-essential container that ended at once did not stop the task: the essential one did, later.
        Assert.Contains(_coordinator.Reports(arn), r => r.LastStatus == "RUNNING" && r.Containers.Single(c => c.ContainerName == "brief").LastStatus == "STOPPED");
    }

    [Fact]
    public async Task Containers_start_in_dependency_order()
    {
        var definition = Definition($$"""
            {
              "family": "ordered",
              "containerDefinitions": [
                { "name": "migrate", "image": "{{LocalImages.Busybox}}", "memory": 32, "essential": false, "command": ["sh", "-c", "sleep 1"] },
                { "name": "db", "image": "{{LocalImages.Busybox}}", "memory": 32, "command": ["sleep", "300"],
                  "healthCheck": { "command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 1 } },
                { "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32, "command": ["sleep", "300"],
                  "dependsOn": [{ "containerName": "migrate", "condition": "SUCCESS" }, { "containerName": "db", "condition": "HEALTHY" }] }
              ]
            }
            """);
        var arn = NewTaskArn();
        await _coordinator.WantAsync(arn, "RUNNING", definition);

        await _coordinator.WaitForAsync(arn, r => r.LastStatus == "RUNNING", TimeSpan.FromSeconds(60));
        var firstAppRunning = _coordinator.Reports(arn).First(r => r.Containers.Single(c => c.ContainerName == "app").LastStatus == "RUNNING");
        var migrate = firstAppRunning.Containers.Single(c => c.ContainerName == "migrate");
        Assert.Equal(("STOPPED", 0), (migrate.LastStatus, migrate.ExitCode));
        Assert.Equal("HEALTHY", firstAppRunning.Containers.Single(c => c.ContainerName == "db").HealthStatus);
        Assert.DoesNotContain(_coordinator.Reports(arn), r =>
            r.Containers.Single(c => c.ContainerName == "app").LastStatus == "RUNNING" && r.Containers.Single(c => c.ContainerName == "db").HealthStatus != "HEALTHY");

        await _coordinator.WantAsync(arn, "STOPPED", definition);
        await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_container_killed_for_memory_is_reported_as_ECS_reports_it()
    {
        var definition = Definition($$"""
            { "family": "memory-hog", "containerDefinitions": [{ "name": "hog", "image": "{{LocalImages.Busybox}}", "memory": 16,
              "command": ["sh", "-c", "sleep 1; exec dd if=/dev/zero of=/dev/null bs=64M count=1"] }] }
            """);
        var arn = NewTaskArn();
        await _coordinator.WantAsync(arn, "RUNNING", definition);

        // The hog allocates a moment after it starts: containerd's shim watches a container's memory cgroup
        // only once its process runs, so a kill in the first milliseconds is known to no one (Docker, ECS's
        // agent, this one) as more than a SIGKILL. containerd may send its oom event after the exit: the
        // agent then gives the reason in a second report.
        var stopped = await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED" && r.Containers[0].Reason.StartsWith("OutOfMemoryError", StringComparison.Ordinal),
            TimeSpan.FromSeconds(60));
        var hog = Assert.Single(stopped.Containers);
        Assert.Equal(137, hog.ExitCode);
        Assert.Equal("OutOfMemoryError: Container killed due to memory usage", hog.Reason);
        Assert.Equal("EssentialContainerExited", stopped.StopCode);
    }

    [Fact]
    public async Task Logs_are_read_over_the_channel_with_tail_and_follow_and_stay_readable_after_the_task_stops()
    {
        var definition = Definition($$"""
            {
              "family": "logger",
              "containerDefinitions": [
                { "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32,
                  "command": ["sh", "-c", "i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo line $i; echo oops $i >&2; sleep 0.5; done"],
                  "logConfiguration": { "logDriver": "awslogs", "options": { "awslogs-group": "/ecs/logger", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs" } } },
                { "name": "quiet", "image": "{{LocalImages.Busybox}}", "memory": 32, "essential": false, "command": ["sleep", "300"] }
              ]
            }
            """);
        var arn = NewTaskArn();
        var taskId = arn[(arn.LastIndexOf('/') + 1)..];
        await _coordinator.WantAsync(arn, "RUNNING", definition);
        await _coordinator.WaitForAsync(arn, r => r.LastStatus == "RUNNING", TimeSpan.FromSeconds(30));

        // Follow from the last 2 lines: the lines written later arrive on the same stream, in order.
        var followed = new List<LogEvent>();
        LogChunk? first = null;
        using (var enough = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            await foreach (var chunk in _coordinator.LogsAsync(new LogRequest { TaskArn = arn, ContainerName = "app", Tail = 2, Follow = true }, enough.Token))
            {
                first ??= chunk;
                Assert.Empty(chunk.Error);
                followed.AddRange(chunk.Events);
                if (followed.Any(e => e.Message == "line 12"))
                {
                    break;
                }
            }
        }

        Assert.Equal("/ecs/logger", first!.LogGroupName);
        Assert.Equal($"ecs/app/{taskId}", first.LogStreamName);
        var stdout = followed.Where(e => e.Source == "stdout").Select(e => int.Parse(e.Message["line ".Length..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(Enumerable.Range(stdout[0], stdout.Count), stdout); // no gaps, no repeats
        Assert.True(stdout[0] < 10, $"following began at line {stdout[0]}, so no line arrived by following");
        Assert.Contains(followed, e => e.Source == "stderr" && e.Message.StartsWith("oops ", StringComparison.Ordinal));
        Assert.All(followed, e => Assert.True(Math.Abs((DateTimeOffset.UtcNow - e.Timestamp.ToDateTimeOffset()).TotalMinutes) < 2));

        // The essential container ended; its logs stay readable (without follow the stream ends by itself).
        await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(60));
        var all = new List<LogEvent>();
        LogChunk? last = null;
        await foreach (var chunk in _coordinator.LogsAsync(new LogRequest { TaskArn = arn, ContainerName = "app" }))
        {
            all.AddRange(chunk.Events);
            last = chunk;
        }

        Assert.True(last!.End);
        Assert.Equal(24, all.Count);
        Assert.Equal("line 1", all.First(e => e.Source == "stdout").Message);
        var tail = await _coordinator.LogsAsync(new LogRequest { TaskArn = arn, ContainerName = "app", Tail = 3 }).SelectMany(c => c.Events.ToAsyncEnumerable()).ToListAsync();
        // The last 3 of the 4 lines of the last round (stdout and stderr may interleave either way).
        Assert.Equal(3, tail.Count);
        Assert.All(tail, e => Assert.Contains(e.Message, new[] { "line 11", "oops 11", "line 12", "oops 12" }));

        // since: only lines written at or after the time given.
        var cut = all.OrderBy(e => e.Timestamp.ToDateTimeOffset()).ElementAt(all.Count - 6).Timestamp;
        var recent = await _coordinator.LogsAsync(new LogRequest { TaskArn = arn, ContainerName = "app", Since = cut }).SelectMany(c => c.Events.ToAsyncEnumerable()).ToListAsync();
        Assert.InRange(recent.Count, 1, 8);
        Assert.All(recent, e => Assert.True(e.Timestamp.ToDateTimeOffset() >= cut.ToDateTimeOffset().AddMilliseconds(-1), $"{e.Message} at {e.Timestamp} is before {cut}"));

        // Asking for what is not there is answered with ECS's error words.
        var unnamed = await _coordinator.LogsAsync(new LogRequest { TaskArn = arn }).LastAsync();
        Assert.StartsWith("InvalidParameterException: containerName", unnamed.Error, StringComparison.Ordinal);
        var unknown = await _coordinator.LogsAsync(new LogRequest { TaskArn = arn + "0", ContainerName = "app" }).LastAsync();
        Assert.StartsWith("ResourceNotFoundException", unknown.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Docker_volumes_get_their_driver_options_and_labels_by_scope_and_task_scoped_ones_go_at_cleanup()
    {
        var shared = $"ecslite-test-{Guid.NewGuid():N}";
        var definition = Definition($$"""
            {
              "family": "volumes",
              "containerDefinitions": [{
                "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32,
                "command": ["sh", "-c", "grep -q ' /scratch tmpfs ' /proc/mounts && echo kept > /shared/note && sleep 300"],
                "mountPoints": [{ "sourceVolume": "scratch", "containerPath": "/scratch" }, { "sourceVolume": "{{shared}}", "containerPath": "/shared" }]
              }],
              "volumes": [
                { "name": "scratch", "dockerVolumeConfiguration": { "scope": "task", "driver": "local",
                  "driverOpts": { "type": "tmpfs", "device": "tmpfs", "o": "size=2m" }, "labels": { "team": "a" } } },
                { "name": "{{shared}}", "dockerVolumeConfiguration": { "scope": "shared", "autoprovision": true, "labels": { "team": "b" } } }
              ]
            }
            """);
        var arn = NewTaskArn();
        var taskVolume = $"ecs-volumes-1-scratch-{arn[(arn.LastIndexOf('/') + 1)..]}";
        try
        {
            await _coordinator.WantAsync(arn, "RUNNING", definition);
            await _coordinator.WaitForAsync(arn, r => r.LastStatus == "RUNNING", TimeSpan.FromSeconds(30));
            var (_, scratch) = await ProcessRunner.RunAsync("docker", ["volume", "inspect", "--format", "{{json .Labels}} {{json .Options}}", taskVolume]);
            Assert.Contains("\"team\":\"a\"", scratch, StringComparison.Ordinal);
            Assert.Contains($"\"com.amazonaws.ecs.task-arn\":\"{arn}\"", scratch, StringComparison.Ordinal);
            Assert.Contains("\"type\":\"tmpfs\"", scratch, StringComparison.Ordinal);
            var (_, sharedLabels) = await ProcessRunner.RunAsync("docker", ["volume", "inspect", "--format", "{{json .Labels}}", shared]);
            Assert.Contains("\"team\":\"b\"", sharedLabels, StringComparison.Ordinal);

            // A shared volume that is not there and may not be made: the task fails to start, as ECS's does.
            var strict = Definition($$"""
                {
                  "family": "strict-volume",
                  "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 32, "command": ["sleep", "300"],
                    "mountPoints": [{ "sourceVolume": "{{shared}}-absent", "containerPath": "/data" }] }],
                  "volumes": [{ "name": "{{shared}}-absent", "dockerVolumeConfiguration": { "scope": "shared", "autoprovision": false } }]
                }
                """);
            var strictArn = NewTaskArn();
            await _coordinator.WantAsync(strictArn, "RUNNING", strict);
            var failed = await _coordinator.WaitForAsync(strictArn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(30));
            Assert.Equal("TaskFailedToStart", failed.StopCode);
            Assert.StartsWith("CannotCreateContainerError:", failed.StoppedReason, StringComparison.Ordinal);
            Assert.Contains("autoprovision", failed.StoppedReason, StringComparison.Ordinal);

            // After the cleanup wait the task-scoped volume goes with the containers; the shared one stays, with its data.
            await _coordinator.WantAsync(arn, "STOPPED", definition);
            await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(30));
            await Eventually.HoldsAsync(async () => (await ProcessRunner.RunAsync("docker", ["volume", "ls", "-q"])).Output.Contains(taskVolume, StringComparison.Ordinal) is false,
                TimeSpan.FromSeconds(60), "the task-scoped volume removed at cleanup");
            var (_, note) = await ProcessRunner.RunAsync("docker", ["run", "--rm", "-v", $"{shared}:/shared", LocalImages.Busybox, "cat", "/shared/note"]);
            Assert.Equal("kept", note.Trim());
        }
        finally
        {
            await ProcessRunner.RunAsync("docker", ["volume", "rm", "-f", shared]);
        }
    }

    [Fact]
    public async Task The_ECS_agents_datavolume_task_definition_runs_with_its_volume_source_created_first()
    {
        // The ECS agent's own functional test, with our local busybox for its registry's. The source
        // container's command cannot run: it only has to exist for the others' volumesFrom.
        var json = TaskDefinitionCases.Corpus().Single(c => c.Name == "ecs-agent-datavolume.json").Json;
        var definition = Definition(json.Replace("127.0.0.1:51670/busybox:latest", LocalImages.Busybox, StringComparison.Ordinal));
        var arn = NewTaskArn();
        await _coordinator.WantAsync(arn, "RUNNING", definition);

        var stopped = await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(60));
        Assert.Equal("EssentialContainerExited", stopped.StopCode);
        var containers = stopped.Containers.ToDictionary(c => c.ContainerName);
        Assert.Equal(42, containers["exit"].ExitCode); // it saw the file dataSource wrote into the shared volume
        Assert.Equal(0, containers["dataSource"].ExitCode);
        Assert.StartsWith("CannotStartContainerError:", containers["data-volume-source"].Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(_coordinator.Reports(arn), r => r.StopCode == "TaskFailedToStart");
    }

    [Fact]
    public async Task An_awsvpc_tasks_containers_share_one_network_namespace_and_reach_each_other_on_localhost()
    {
        var definition = Definition($$"""
            {
              "family": "awsvpc-localhost", "networkMode": "awsvpc", "cpu": "256", "memory": "128",
              "containerDefinitions": [
                { "name": "server", "image": "{{LocalImages.Busybox}}", "essential": true, "portMappings": [{ "containerPort": 8181 }],
                  "command": ["sh", "-c", "mkdir -p /www && echo from-the-server > /www/index.html && exec httpd -f -p 8181 -h /www"] },
                { "name": "client", "image": "{{LocalImages.Busybox}}", "essential": false,
                  "command": ["sh", "-c", "for i in $(seq 1 100); do wget -q -O- http://localhost:8181/ && exit 0; sleep 0.1; done; exit 1"] }
              ]
            }
            """);
        var arn = NewTaskArn();
        await _coordinator.WantAsync(arn, "RUNNING", definition);

        var done = await _coordinator.WaitForAsync(arn, r => r.Containers.Any(c => c.ContainerName == "client" && c.LastStatus == "STOPPED"), TimeSpan.FromSeconds(60));
        var containers = done.Containers.ToDictionary(c => c.ContainerName);
        Assert.Equal(0, containers["client"].ExitCode);
        Assert.Equal("RUNNING", done.LastStatus);
        Assert.Equal("RUNNING", containers["server"].LastStatus);

        // One address for the task (its pause container's), the port published from it on the host.
        var address = containers["server"].PrivateIPv4Address;
        Assert.Matches(@"^\d+\.\d+\.\d+\.\d+$", address);
        Assert.Equal(address, containers["client"].PrivateIPv4Address);
        var binding = Assert.Single(containers["server"].NetworkBindings);
        Assert.Equal((8181, 8181), (binding.ContainerPort, binding.HostPort));
        Assert.Contains("from-the-server", await Eventually.PageAsync("http://127.0.0.1:8181/", TimeSpan.FromSeconds(10)), StringComparison.Ordinal);

        var (_, mode) = await ProcessRunner.RunAsync("docker", ["inspect", "--format", "{{.HostConfig.NetworkMode}}", containers["server"].RuntimeId]);
        var pause = mode.Trim()["container:".Length..];
        var (_, name) = await ProcessRunner.RunAsync("docker", ["inspect", "--format", "{{index .Config.Labels \"com.amazonaws.ecs.container-name\"}} {{.State.Running}}", pause]);
        Assert.Equal("~internal~ecs~pause true", name.Trim());

        await _coordinator.WantAsync(arn, "STOPPED", definition);
        await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(30));
        var (_, running) = await ProcessRunner.RunAsync("docker", ["inspect", "--format", "{{.State.Running}}", pause]);
        Assert.Equal("false", running.Trim());
    }

    [Fact]
    public async Task An_image_that_cannot_be_pulled_stops_the_task_with_CannotPullContainerError()
    {
        var definition = Definition("""
            { "family": "missing-image", "containerDefinitions": [{ "name": "app", "image": "127.0.0.1:5999/ecslite/missing:1", "memory": 32 }] }
            """);
        var arn = NewTaskArn();
        await _coordinator.WantAsync(arn, "RUNNING", definition);

        var stopped = await _coordinator.WaitForAsync(arn, r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(60));
        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.StartsWith("CannotPullContainerError:", stopped.StoppedReason, StringComparison.Ordinal);
        Assert.StartsWith("CannotPullContainerError:", stopped.Containers[0].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_a_SIGKILL_the_restarted_agent_adopts_its_containers_without_restarting_them_and_leaves_no_orphans()
    {
        var definition = Definition($$"""
            { "family": "long-running", "containerDefinitions": [{ "name": "app", "image": "{{LocalImages.Busybox}}", "memory": 16, "command": ["sleep", "600"] }] }
            """);
        var arns = Enumerable.Range(0, 5).Select(_ => NewTaskArn()).ToList();
        foreach (var arn in arns)
        {
            await _coordinator.WantAsync(arn, "RUNNING", definition);
        }

        foreach (var arn in arns)
        {
            await _coordinator.WaitForAsync(arn, r => r.LastStatus == "RUNNING", TimeSpan.FromSeconds(60));
        }

        using var docker = DockerRuntime.Connect();
        async Task<Dictionary<string, DateTimeOffset?>> StartTimesAsync()
        {
            var times = new Dictionary<string, DateTimeOffset?>();
            foreach (var container in await docker.ListOwnedAsync(_coordinator.InstanceArn, default))
            {
                times[container.ID] = (await docker.InspectAsync(container.ID, default)).StartedAt;
            }

            return times;
        }

        var before = await StartTimesAsync();
        Assert.Equal(5, before.Count);

        await _agent.Process.KillAsync();
        var hellos = _coordinator.Hellos;
        _coordinator.Forget(arns[4]); // no longer wanted: the full set after the restart leaves it out
        _agent.StartAgain();
        await Eventually.HoldsAsync(() => _coordinator.Hellos > hellos, TimeSpan.FromSeconds(30), "the restarted agent's hello");

        // The hello reports all five tasks, running, from what Docker's labels said.
        Assert.Equal(arns.Order(), _coordinator.LastHelloTasks.Select(t => t.TaskArn).Order());
        Assert.All(_coordinator.LastHelloTasks, t => Assert.Equal("RUNNING", t.LastStatus));

        var stopped = await _coordinator.WaitForAsync(arns[4], r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(30));
        Assert.Equal("UserInitiated", stopped.StopCode);

        var after = await StartTimesAsync();
        Assert.Equal(before.Keys.Order(), after.Keys.Order()); // no container added: no orphans, no duplicates
        foreach (var arn in arns.Take(4))
        {
            var id = _coordinator.Reports(arn).Last().Containers[0].RuntimeId;
            Assert.Equal(before[id], after[id]); // not restarted
            Assert.True((await docker.InspectAsync(id, default)).Running);
        }

        // An adopted task is still fully in the agent's hands: it stops when asked.
        await _coordinator.WantAsync(arns[0], "STOPPED", definition);
        await _coordinator.WaitForAsync(arns[0], r => r.LastStatus == "STOPPED", TimeSpan.FromSeconds(30));
    }
}
