using System.Text.Json.Nodes;

namespace EcsLite.Testing;

/// <summary>One task definition ECS refuses: why, and the error a caller must get (ECS's word and the field at fault).</summary>
public sealed record InvalidCase(string Name, string ErrorType, string Field, string Json)
{
    public override string ToString() => Name;
}

/// <summary>
/// Task definitions for tests: a corpus of realistic valid ones (files under TaskDefinitions/ plus the
/// seed's example) and a table of invalid ones drawn from the ECS documentation's rules.
/// </summary>
public static class TaskDefinitionCases
{
    private const string Client = "ClientException";
    private const string Parameter = "InvalidParameterException";

    public static string CorpusDirectory => Path.Combine(AppContext.BaseDirectory, "TaskDefinitions");

    /// <summary>
    /// Real task definitions ECS refuses (templates whose placeholders were never filled in), with what ECS
    /// says: (file name, JSON, the error type, the field at fault).
    /// </summary>
    public static IEnumerable<(string Name, string Json, string ErrorType, string Field)> RefusedCorpus() =>
    [
        Refused("terraform-template.json", Client, "containerDefinitions[0].image"),
        Refused("phoenix-template.json", Client, "containerDefinitions[0].image"),
    ];

    private static (string, string, string, string) Refused(string file, string errorType, string field) =>
        (file, File.ReadAllText(Path.Combine(CorpusDirectory, "refused", file)), errorType, field);

    /// <summary>Every corpus file and the seed's example, as (file name, JSON text).</summary>
    public static IEnumerable<(string Name, string Json)> Corpus() =>
        Directory.GetFiles(CorpusDirectory, "*.json").Order(StringComparer.Ordinal)
            .Append(Path.Combine(RepoPaths.Examples, "fargate-task-definition.json"))
            .Select(path => (Path.GetFileName(path), File.ReadAllText(path)));

    /// <summary>A valid bridge-mode task definition each invalid case starts from.</summary>
    public const string Base = """
        {
          "family": "base",
          "networkMode": "bridge",
          "containerDefinitions": [
            { "name": "web", "image": "httpd:2.4", "memory": 128, "portMappings": [{ "containerPort": 80, "hostPort": 8080 }] },
            { "name": "sidecar", "image": "busybox", "memory": 32, "essential": false }
          ],
          "volumes": [{ "name": "data" }]
        }
        """;

    public static IReadOnlyList<InvalidCase> Invalid { get; } =
    [
        Case("family missing", Parameter, "family", t => t.Remove("family")),
        Case("family with a space", Client, "family", t => t["family"] = "my app"),
        Case("family of 256 characters", Client, "family", t => t["family"] = new string('f', 256)),
        Case("no containers", Parameter, "containerDefinitions", t => t["containerDefinitions"] = new JsonArray()),
        Case("eleven containers", Client, "containerDefinitions", t =>
        {
            var list = new JsonArray();
            for (var i = 0; i < 11; i++)
            {
                list.Add(new JsonObject { ["name"] = $"c{i}", ["image"] = "busybox", ["memory"] = 16 });
            }

            t["containerDefinitions"] = list;
        }),
        Case("container without a name", Client, "containerDefinitions[1].name", t => C(t, 1).Remove("name")),
        Case("container name with a space", Client, "containerDefinitions[1].name", t => C(t, 1)["name"] = "side car"),
        Case("duplicate container names", Client, "containerDefinitions[1].name", t => C(t, 1)["name"] = "web"),
        Case("container without an image", Client, "containerDefinitions[0].image", t => C(t, 0).Remove("image")),
        Case("no essential container", Client, "containerDefinitions", t => C(t, 0)["essential"] = false),
        Case("no memory for a container and none for the task", Client, "containerDefinitions[1].memory", t => C(t, 1).Remove("memory")),
        Case("memoryReservation above memory", Client, "containerDefinitions[0].memoryReservation", t => C(t, 0)["memoryReservation"] = 256),
        Case("memory below 6 MiB", Client, "containerDefinitions[0].memory", t => C(t, 0)["memory"] = 4),
        Case("task cpu that is not a number", Client, "cpu", t => t["cpu"] = "lots"),
        Case("task memory given in vCPU", Client, "memory", t => t["memory"] = "1.5 vCPU"),
        Case("container memory above task memory", Client, "containerDefinitions[0].memory", t => t["memory"] = "64"),
        Case("containers' cpu above task cpu", Client, "containerDefinitions", t =>
        {
            t["cpu"] = "256";
            C(t, 0)["cpu"] = 200;
            C(t, 1)["cpu"] = 100;
        }),
        Case("Fargate size that does not exist", Client, "memory", t => Fargate(t, "256", "4096")),
        Case("Fargate with bridge networking", Client, "networkMode", t =>
        {
            Fargate(t, "256", "512");
            t["networkMode"] = "bridge";
        }),
        Case("Fargate without task cpu", Client, "cpu", t =>
        {
            Fargate(t, "256", "512");
            t.Remove("cpu");
        }),
        Case("Fargate with a privileged container", Client, "containerDefinitions[1].privileged", t =>
        {
            Fargate(t, "256", "512");
            C(t, 1)["privileged"] = true;
        }),
        Case("awsvpc hostPort different from containerPort", Client, "containerDefinitions[0].portMappings[0].hostPort", t => t["networkMode"] = "awsvpc"),
        Case("links with awsvpc", Client, "containerDefinitions[1].links[0]", t =>
        {
            t["networkMode"] = "awsvpc";
            C(t, 0)["portMappings"] = new JsonArray(new JsonObject { ["containerPort"] = 80 });
            C(t, 1)["links"] = new JsonArray("web");
        }),
        Case("link to a container that does not exist", Client, "containerDefinitions[0].links[0]", t => C(t, 0)["links"] = new JsonArray("db:database")),
        Case("dependsOn a container that does not exist", Client, "containerDefinitions[0].dependsOn[0].containerName", t =>
            C(t, 0)["dependsOn"] = new JsonArray(new JsonObject { ["containerName"] = "db", ["condition"] = "START" })),
        Case("dependsOn with an unknown condition", Parameter, "containerDefinitions[0].dependsOn[0].condition", t =>
            C(t, 0)["dependsOn"] = new JsonArray(new JsonObject { ["containerName"] = "sidecar", ["condition"] = "READY" })),
        Case("dependsOn HEALTHY without a health check", Client, "containerDefinitions[0].dependsOn[0].condition", t =>
            C(t, 0)["dependsOn"] = new JsonArray(new JsonObject { ["containerName"] = "sidecar", ["condition"] = "HEALTHY" })),
        Case("volumesFrom a container that does not exist", Client, "containerDefinitions[1].volumesFrom[0].sourceContainer", t =>
            C(t, 1)["volumesFrom"] = new JsonArray(new JsonObject { ["sourceContainer"] = "db" })),
        Case("volumesFrom and dependsOn in a cycle", Client, "containerDefinitions[1].volumesFrom[0].sourceContainer", t =>
        {
            C(t, 0)["dependsOn"] = new JsonArray(new JsonObject { ["containerName"] = "sidecar", ["condition"] = "START" });
            C(t, 1)["volumesFrom"] = new JsonArray(new JsonObject { ["sourceContainer"] = "web" });
        }),
        Case("links in a cycle", Client, "containerDefinitions[1].links[0]", t =>
        {
            C(t, 0)["links"] = new JsonArray("sidecar");
            C(t, 1)["links"] = new JsonArray("web:app");
        }),
        Case("mountPoint of an undeclared volume", Client, "containerDefinitions[0].mountPoints[0].sourceVolume", t =>
            C(t, 0)["mountPoints"] = new JsonArray(new JsonObject { ["sourceVolume"] = "logs", ["containerPath"] = "/var/log" })),
        Case("health check interval below 5 s", Client, "containerDefinitions[0].healthCheck.interval", t =>
            C(t, 0)["healthCheck"] = new JsonObject { ["command"] = new JsonArray("CMD-SHELL", "true"), ["interval"] = 1 }),
        Case("health check retries above 10", Client, "containerDefinitions[0].healthCheck.retries", t =>
            C(t, 0)["healthCheck"] = new JsonObject { ["command"] = new JsonArray("CMD-SHELL", "true"), ["retries"] = 11 }),
        Case("health check without a command", Parameter, "containerDefinitions[0].healthCheck.command", t =>
            C(t, 0)["healthCheck"] = new JsonObject { ["interval"] = 30 }),
        Case("health check command not CMD or CMD-SHELL", Client, "containerDefinitions[0].healthCheck.command[0]", t =>
            C(t, 0)["healthCheck"] = new JsonObject { ["command"] = new JsonArray("RUN", "true") }),
        Case("stopTimeout above 120 s", Client, "containerDefinitions[0].stopTimeout", t => C(t, 0)["stopTimeout"] = 121),
        Case("unknown networkMode", Parameter, "networkMode", t => t["networkMode"] = "nat"),
        Case("unknown port protocol", Parameter, "containerDefinitions[0].portMappings[0].protocol", t => P(t)["protocol"] = "sctp"),
        Case("containerPort above 65535", Client, "containerDefinitions[0].portMappings[0].containerPort", t => P(t)["containerPort"] = 70000),
        Case("host port used twice", Client, "containerDefinitions[1].portMappings[0].hostPort", t =>
            C(t, 1)["portMappings"] = new JsonArray(new JsonObject { ["containerPort"] = 9000, ["hostPort"] = 8080 })),
        Case("ulimit soft limit above hard limit", Client, "containerDefinitions[0].ulimits[0].softLimit", t =>
            C(t, 0)["ulimits"] = new JsonArray(new JsonObject { ["name"] = "nofile", ["softLimit"] = 2048, ["hardLimit"] = 1024 })),
        Case("unknown ulimit name", Parameter, "containerDefinitions[0].ulimits[0].name", t =>
            C(t, 0)["ulimits"] = new JsonArray(new JsonObject { ["name"] = "files", ["softLimit"] = 1, ["hardLimit"] = 1 })),
        Case("unknown log driver", Parameter, "containerDefinitions[0].logConfiguration.logDriver", t =>
            C(t, 0)["logConfiguration"] = new JsonObject { ["logDriver"] = "loki" }),
        Case("unknown compatibility", Parameter, "requiresCompatibilities[0]", t => t["requiresCompatibilities"] = new JsonArray("LAMBDA")),
        Case("reserved tag key", Parameter, "tags[0].key", t => t["tags"] = new JsonArray(new JsonObject { ["key"] = "aws:owner", ["value"] = "me" })),
        Case("volume declared twice", Client, "volumes[1].name", t => ((JsonArray)t["volumes"]!).Add(new JsonObject { ["name"] = "data" })),
        Case("relative host path", Client, "volumes[0].host.sourcePath", t => V(t)["host"] = new JsonObject { ["sourcePath"] = "srv/data" }),
        Case("autoprovision with task scope", Client, "volumes[0].dockerVolumeConfiguration.autoprovision", t =>
            V(t)["dockerVolumeConfiguration"] = new JsonObject { ["scope"] = "task", ["autoprovision"] = true }),
        Case("secret without valueFrom", Parameter, "containerDefinitions[0].secrets[0].valueFrom", t =>
            C(t, 0)["secrets"] = new JsonArray(new JsonObject { ["name"] = "TOKEN" })),
        Case("unknown pidMode", Parameter, "pidMode", t => t["pidMode"] = "container"),
        Case("ephemeral storage below 21 GiB", Client, "ephemeralStorage.sizeInGiB", t => t["ephemeralStorage"] = new JsonObject { ["sizeInGiB"] = 10 }),
        Case("distinctInstance in a task definition", Parameter, "placementConstraints[0].type", t =>
            t["placementConstraints"] = new JsonArray(new JsonObject { ["type"] = "distinctInstance" })),
    ];

    private static InvalidCase Case(string name, string errorType, string field, Action<JsonObject> change)
    {
        var definition = JsonNode.Parse(Base)!.AsObject();
        change(definition);
        return new InvalidCase(name, errorType, field, definition.ToJsonString());
    }

    private static JsonObject C(JsonObject t, int index) => t["containerDefinitions"]![index]!.AsObject();

    private static JsonObject P(JsonObject t) => C(t, 0)["portMappings"]![0]!.AsObject();

    private static JsonObject V(JsonObject t) => t["volumes"]![0]!.AsObject();

    private static void Fargate(JsonObject t, string cpu, string memory)
    {
        t["requiresCompatibilities"] = new JsonArray("FARGATE");
        t["networkMode"] = "awsvpc";
        t["cpu"] = cpu;
        t["memory"] = memory;
        C(t, 0)["portMappings"] = new JsonArray(new JsonObject { ["containerPort"] = 80 });
    }
}
