using EcsLite.Agent;
using EcsLite.Agent.Core;

const string Usage = """
    ecslite-agent: joins this host to an EcsLite cluster and runs its tasks.

    Options:
      --coordinator URL   a coordinator to dial (repeat for several; tried in turn)  ECSLITE_COORDINATOR=url1,url2
      --cluster NAME      the cluster to join (default: default)                     ECS_CLUSTER
      --data-dir DIR      identity and state (default: /var/lib/ecslite/agent)       ECS_DATADIR
      --config FILE       KEY=VALUE settings as in ECS's ecs.config (default: /etc/ecslite/agent.conf if present)
      --help, --version

    Also read from the config file or the environment, as the ECS agent names them:
      ECS_RESERVED_MEMORY, ECS_RESERVED_PORTS, ECS_RESERVED_PORTS_UDP, ECS_INSTANCE_ATTRIBUTES,
      ECS_LOGLEVEL, ECS_CONTAINER_STOP_TIMEOUT, ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION, ECS_IMAGE_PULL_BEHAVIOR,
      ECS_IMAGE_PULL_TIMEOUT, ECS_CONTAINER_CREATE_TIMEOUT, ECS_CONTAINER_START_TIMEOUT, DOCKER_HOST
      (the full list, with defaults, is in docs/configuration.md)
    """;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(Usage);
    return 0;
}

if (args.Contains("--version"))
{
    Console.WriteLine(HostInspector.AgentVersion);
    return 0;
}

AgentSettings settings;
try
{
    var configIndex = Array.IndexOf(args, "--config");
    var configFile = configIndex >= 0 && configIndex + 1 < args.Length ? args[configIndex + 1] : "/etc/ecslite/agent.conf";
    var file = File.Exists(configFile) ? AgentSettings.ParseConfigFile(File.ReadAllText(configFile))
        : configIndex >= 0 ? throw new FormatException($"config file {configFile} does not exist") : [];
    var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
        .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);
    settings = AgentSettings.From(file, environment, args);
}
catch (FormatException e)
{
    Console.Error.WriteLine($"ecslite-agent: invalid settings: {e.Message}");
    return 2;
}

var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { Args = args });
builder.Services.AddSystemd();
builder.Logging.AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
    o.UseUtcTimestamp = true;
});
builder.Logging.SetMinimumLevel(settings.LogLevel switch
{
    "debug" => LogLevel.Debug,
    "warn" => LogLevel.Warning,
    "error" => LogLevel.Error,
    "crit" => LogLevel.Critical,
    _ => LogLevel.Information,
});
builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
builder.Logging.AddFilter("Grpc", LogLevel.Warning);
builder.Logging.AddFilter("System.Net.Http", LogLevel.Warning);
builder.Services.AddSingleton(settings);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<HostInspector>();
builder.Services.AddSingleton(_ =>
{
    var identity = new InstanceIdentity(settings.DataDir);
    identity.Load();
    return identity;
});
builder.Services.AddHostedService<AgentService>();

using var host = builder.Build();
var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("EcsLite.Agent");
var identity = host.Services.GetRequiredService<InstanceIdentity>();
AgentLog.Starting(logger, HostInspector.AgentVersion, settings.Cluster, string.Join(", ", settings.Coordinators), settings.DataDir,
    identity.ContainerInstanceArn ?? "(none yet)");
await host.RunAsync();
return 0;

internal static partial class AgentLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "EcsLite agent {Version}: cluster {Cluster}, coordinators {Coordinators}, data {DataDir}, instance {ContainerInstanceArn}")]
    public static partial void Starting(ILogger logger, string version, string cluster, string coordinators, string dataDir, string containerInstanceArn);
}
