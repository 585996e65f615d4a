using EcsLite.Agent.Core;

namespace EcsLite.Agent.Tasks;

/// <summary>
/// How long a task supervisor waits for the engine and how often it tries again. The call timeouts
/// are the ECS agent's settings; the rest are fixed, and tests shrink them.
/// </summary>
/// <param name="PollInterval">How often a task's containers are inspected without an event (events wake the supervisor at once).</param>
/// <param name="RetryInitial">The first wait before trying a failed call again; it doubles on each try.</param>
/// <param name="RetryCap">The longest wait between tries of a call on the way to RUNNING.</param>
/// <param name="StopRetryCap">The longest wait between tries of a stop, which is tried until it works.</param>
/// <param name="Attempts">How often a call on the way to RUNNING is tried before the task fails to start.</param>
/// <param name="InspectFailures">Failed inspections in a row (the engine answering, but wrongly) before a container counts as lost.</param>
/// <param name="StopGrace">How much longer than a container's stop timeout a stop call may take.</param>
/// <param name="EngineWait">How long a call on the way to RUNNING waits for an engine that is away (restarting) before the task fails to start.</param>
public sealed record SupervisorTimings(
    TimeSpan PollInterval,
    TimeSpan RetryInitial,
    TimeSpan RetryCap,
    TimeSpan StopRetryCap,
    int Attempts,
    int InspectFailures,
    TimeSpan PullTimeout,
    TimeSpan CreateTimeout,
    TimeSpan StartTimeout,
    TimeSpan InspectTimeout,
    TimeSpan RemoveTimeout,
    TimeSpan StopGrace,
    TimeSpan EngineWait)
{
    public static SupervisorTimings From(AgentSettings settings) => new(
        PollInterval: TimeSpan.FromSeconds(5),
        RetryInitial: TimeSpan.FromMilliseconds(250),
        RetryCap: TimeSpan.FromSeconds(4),
        StopRetryCap: TimeSpan.FromSeconds(30),
        Attempts: 4,
        InspectFailures: 5,
        PullTimeout: settings.ImagePullTimeout,
        CreateTimeout: settings.ContainerCreateTimeout,
        StartTimeout: settings.ContainerStartTimeout,
        InspectTimeout: TimeSpan.FromSeconds(30),
        RemoveTimeout: TimeSpan.FromMinutes(5),
        StopGrace: TimeSpan.FromSeconds(30),
        EngineWait: TimeSpan.FromMinutes(2));

    /// <summary>The wait before try <paramref name="attempt"/> + 1 (0-based), with jitter in [0.5, 1] of it.</summary>
    public TimeSpan Backoff(int attempt, TimeSpan cap, double random01)
    {
        var ceiling = Math.Min(cap.TotalMilliseconds, RetryInitial.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 20)));
        return TimeSpan.FromMilliseconds(ceiling * (0.5 + (random01 / 2)));
    }
}
