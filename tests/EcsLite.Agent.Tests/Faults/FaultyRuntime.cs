using System.Net;
using System.Net.Sockets;
using EcsLite.Agent.Docker;

namespace EcsLite.Agent.Tests.Faults;

/// <summary>The ways an engine call fails.</summary>
public enum Fault
{
    None,

    /// <summary>A 400: the engine refuses the request.</summary>
    BadRequest,

    /// <summary>A 500.</summary>
    ServerError,

    /// <summary>The engine's socket refuses the connection (it is restarting).</summary>
    Refused,

    /// <summary>The call never returns (until the caller gives up on it).</summary>
    Hang,

    /// <summary>The engine does it, but the answer is lost (a broken connection after the work).</summary>
    LostAnswer,

    /// <summary>It works, slowly.</summary>
    Slow,
}

/// <summary>
/// A seeded fault schedule: each call fails with the plan's probability, in a way chosen at random
/// among those the operation can meet; and, if the plan says so, one start-path operation always fails.
/// </summary>
public sealed class FaultPlan
{
    private static readonly Fault[] Transient = [Fault.ServerError, Fault.Refused, Fault.Hang, Fault.LostAnswer, Fault.Slow];
    private readonly Random _random;
    private readonly Lock _lock = new();

    public FaultPlan(int seed)
    {
        _random = new Random(seed);
        Rate = new[] { 0, 0.1, 0.25, 0.5 }[_random.Next(4)];
        if (_random.Next(5) == 0)
        {
            Persistent = (new[] { "pull", "create", "start", "pause" }[_random.Next(4)], _random.Next(2) == 0 ? Fault.BadRequest : Fault.ServerError);
        }

        DropEvents = _random.Next(3) == 0;
    }

    public double Rate { get; }

    public (string Operation, Fault Fault)? Persistent { get; }

    /// <summary>The event stream breaks and loses events.</summary>
    public bool DropEvents { get; }

    public int Injected { get; private set; }

    /// <summary>How often each operation met each fault.</summary>
    public Dictionary<(string Operation, Fault Fault), int> Tally { get; } = [];

    public Fault Next(string operation)
    {
        lock (_lock)
        {
            var fault = Persistent is { } always && always.Operation == operation ? always.Fault
                : _random.NextDouble() >= Rate ? Fault.None
                // A 400 only where an engine refuses requests (a bad image, a bad container spec).
                : operation is "pull" or "create" or "start" && _random.Next(6) == 0 ? Fault.BadRequest
                : Transient[_random.Next(Transient.Length)];
            if (fault != Fault.None)
            {
                Injected++;
                Tally[(operation, fault)] = Tally.GetValueOrDefault((operation, fault)) + 1;
            }

            return fault;
        }
    }

    public int Delay(int max)
    {
        lock (_lock)
        {
            return _random.Next(max);
        }
    }
}

/// <summary>Puts a <see cref="FaultPlan"/> in front of an engine: every call of the supervisor's and the task engine's can fail.</summary>
public sealed class FaultyRuntime(IContainerRuntime engine, FaultPlan plan) : IContainerRuntime
{
    public Task<string> CgroupDriverAsync(CancellationToken cancellationToken) => CallAsync("info", ct => engine.CgroupDriverAsync(ct), cancellationToken);

    public Task PullAsync(string image, string behavior, CancellationToken cancellationToken, RegistryAuth? auth = null) =>
        CallAsync("pull", Void(ct => engine.PullAsync(image, behavior, ct, auth)), cancellationToken);

    public Task<bool> ExistsAsync(string image, CancellationToken cancellationToken) =>
        CallAsync(image.StartsWith(PauseImage.Repository, StringComparison.Ordinal) ? "pause" : "inspect", ct => engine.ExistsAsync(image, ct), cancellationToken);

    public Task ImportImageAsync(string repository, string tag, byte[] rootFileSystemTar, IEnumerable<string> changes, CancellationToken cancellationToken) =>
        CallAsync("pause", Void(ct => engine.ImportImageAsync(repository, tag, rootFileSystemTar, changes, ct)), cancellationToken);

    public Task<IReadOnlySet<string>> ImagesInUseAsync(CancellationToken cancellationToken) => engine.ImagesInUseAsync(cancellationToken);

    public Task<bool> RemoveImageAsync(string image, CancellationToken cancellationToken) => engine.RemoveImageAsync(image, cancellationToken);

    public Task<string> CreateAsync(CreateContainerParameters parameters, CancellationToken cancellationToken) =>
        CallAsync(parameters.Labels is { } labels && labels.TryGetValue(ContainerSpec.ContainerNameLabel, out var name) && name == ContainerSpec.PauseContainerName ? "pause" : "create",
            ct => engine.CreateAsync(parameters, ct), cancellationToken);

    public Task StartAsync(string id, CancellationToken cancellationToken) => CallAsync("start", Void(ct => engine.StartAsync(id, ct)), cancellationToken);

    public Task StopAsync(string id, TimeSpan timeout, CancellationToken cancellationToken) =>
        CallAsync("stop", Void(ct => engine.StopAsync(id, timeout, ct)), cancellationToken);

    public Task RemoveAsync(string id, CancellationToken cancellationToken) => CallAsync("remove", Void(ct => engine.RemoveAsync(id, ct)), cancellationToken);

    public Task<ContainerFacts> InspectAsync(string id, CancellationToken cancellationToken) => CallAsync("inspect", ct => engine.InspectAsync(id, ct), cancellationToken);

    public Task<IReadOnlyList<OwnedContainer>> ListOwnedAsync(string containerInstanceArn, CancellationToken cancellationToken) =>
        CallAsync("list", ct => engine.ListOwnedAsync(containerInstanceArn, ct), cancellationToken);

    public Task<IReadOnlyList<OwnedContainer>> ListTaskContainersAsync(string taskArn, CancellationToken cancellationToken) =>
        CallAsync("list", ct => engine.ListTaskContainersAsync(taskArn, ct), cancellationToken);

    public Task<string?> VolumeDriverAsync(string name, CancellationToken cancellationToken) => CallAsync("inspect", ct => engine.VolumeDriverAsync(name, ct), cancellationToken);

    public Task CreateVolumeAsync(string name, string driver, IDictionary<string, string> options, IDictionary<string, string> labels, CancellationToken cancellationToken) =>
        CallAsync("create", Void(ct => engine.CreateVolumeAsync(name, driver, options, labels, ct)), cancellationToken);

    public Task RemoveVolumeAsync(string name, CancellationToken cancellationToken) => CallAsync("remove", Void(ct => engine.RemoveVolumeAsync(name, ct)), cancellationToken);

    /// <summary>The stream breaks now and then, and, when the plan drops events, loses some of them.</summary>
    public async Task WatchAsync(string containerInstanceArn, Action<ContainerEvent> changed, CancellationToken cancellationToken, DateTimeOffset? since = null)
    {
        using var broken = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (plan.DropEvents)
        {
            broken.CancelAfter(plan.Delay(200) + 1);
        }

        try
        {
            await engine.WatchAsync(containerInstanceArn, change =>
            {
                if (!plan.DropEvents || plan.Delay(2) == 0)
                {
                    changed(change);
                }
            }, broken.Token, since);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException("the event stream broke");
        }
    }

    public Task<LogStream> OpenLogsAsync(string id, bool tty, int? tail, bool follow, DateTimeOffset? since, CancellationToken cancellationToken) =>
        engine.OpenLogsAsync(id, tty, tail, follow, since, cancellationToken);

    public void Dispose() => engine.Dispose();

    private static Func<CancellationToken, Task<bool>> Void(Func<CancellationToken, Task> call) => async ct =>
    {
        await call(ct);
        return true;
    };

    private async Task<T> CallAsync<T>(string operation, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        switch (plan.Next(operation))
        {
            case Fault.BadRequest:
                throw new DockerApiException(HttpStatusCode.BadRequest, $"injected: the engine refuses this {operation}");
            case Fault.ServerError:
                throw new DockerApiException(HttpStatusCode.InternalServerError, $"injected: the engine failed this {operation}");
            case Fault.Refused:
                throw new HttpRequestException("injected: connection refused", new SocketException((int)SocketError.ConnectionRefused));
            case Fault.Hang:
                await Task.Delay(Timeout.Infinite, cancellationToken);
                throw new InvalidOperationException("unreachable");
            case Fault.LostAnswer:
                await call(cancellationToken);
                throw new IOException("injected: the connection broke before the answer");
            case Fault.Slow:
                await Task.Delay(plan.Delay(20), cancellationToken);
                break;
        }

        return await call(cancellationToken);
    }
}
