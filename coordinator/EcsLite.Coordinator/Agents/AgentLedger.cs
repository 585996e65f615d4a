using System.Collections.Concurrent;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Api;
using EcsLite.Coordinator.Core;
using EcsLite.Coordinator.Core.ContainerInstances;
using EcsLite.Coordinator.Core.Tasks;
using EcsLite.Coordinator.State;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace EcsLite.Coordinator.Agents;

/// <summary>
/// What an agent's stream changes in the cluster state (its joining, its reports, its end), applied by the
/// leader: here when this coordinator leads, else through <see cref="AgentPeers"/> on the leader. Every
/// coordinator serves the agents connected to it; each connection names the coordinator that holds it
/// (<see cref="Self"/>), so a late word from one an agent has left changes nothing.
/// </summary>
public sealed class AgentLedger(
    ClusterStateMachine state, CoordinatorRole role, AgentSessions sessions, AgentReports reports, LeaderForwarder forwarder, TimeProvider time, IOptions<CoordinatorOptions> options)
{
    /// <summary>How long a follower goes on asking for a leader that does not answer: its lease's end, an election, a load.</summary>
    private static readonly TimeSpan ElectionWait = TimeSpan.FromSeconds(15);

    /// <summary>When the leader last heard (from the coordinator holding it) that an agent held elsewhere sends heartbeats.</summary>
    private readonly ConcurrentDictionary<string, long> _alive = new(StringComparer.Ordinal);

    /// <summary>This coordinator, as other coordinators reach it (and as connections name it).</summary>
    public string Self { get; } = options.Value.AdvertisedUrl();

    /// <summary>An agent's hello: the instance joins (or rejoins), held by <paramref name="holder"/>, with the tasks the hello reports.</summary>
    public async Task<(string ContainerInstanceArn, string Cluster)> JoinAsync(AgentHello hello, string holder, CancellationToken cancellationToken)
    {
        if (await OnLeaderAsync(leader => leader.JoinAsync(new PeerJoinRequest { Holder = holder, Hello = hello }, cancellationToken: cancellationToken), cancellationToken) is { } joined)
        {
            await state.WaitForRevisionAsync(joined.Revision, LeaderForwarder.CatchUpWait, cancellationToken);
            return (joined.ContainerInstanceArn, joined.Cluster);
        }

        var stored = await state.ApplyAsync((s, c) => ContainerInstanceCommands.Join(s, hello, c, Guid.NewGuid().ToString("N"), holder), cancellationToken);
        var arn = stored.ContainerInstance.ContainerInstanceArn;
        if (holder != Self && sessions.Find(arn) is { } here && sessions.Remove(here))
        {
            here.Close($"the agent connected to {holder}"); // a stream it left without closing
        }

        // What the agent already runs, as it says (so tasks it finished while away count as finished).
        await state.ApplyAsync((s, c) => TaskCommands.ReportAll(s, arn, hello.Tasks, c), cancellationToken);
        return (arn, stored.Cluster);
    }

    /// <summary>An agent's task state changes, in the order it sent them.</summary>
    public async Task ReportAsync(string containerInstanceArn, string holder, IReadOnlyList<TaskStateChange> changes)
    {
        var request = new PeerReportRequest { Holder = holder, ContainerInstanceArn = containerInstanceArn, Reports = { changes } };
        if (await OnLeaderAsync(leader => leader.ReportAsync(request), CancellationToken.None) is not null)
        {
            return;
        }

        await reports.ApplyAsync(containerInstanceArn, changes);
    }

    /// <summary>The agent's stream to <paramref name="holder"/> ended (or its heartbeats stopped there).</summary>
    public async Task DisconnectAsync(string containerInstanceArn, string holder, CancellationToken cancellationToken)
    {
        var request = new PeerAgentRequest { Holder = holder, ContainerInstanceArn = containerInstanceArn };
        if (await OnLeaderAsync(leader => leader.DisconnectAsync(request, cancellationToken: cancellationToken), cancellationToken) is not null)
        {
            return;
        }

        _alive.TryRemove(containerInstanceArn, out _);
        await state.ApplyAsync((s, c) => ContainerInstanceCommands.Disconnected(s, containerInstanceArn, c, holder), cancellationToken);
    }

    /// <summary>
    /// Tasks that cannot be sent to their agents (one alone is larger than a message of the stream): stopped, with the
    /// reason, by the leader (a follower holding the agent asks it), so none stays PENDING for ever.
    /// </summary>
    public async Task UndeliverableAsync(IReadOnlyList<string> taskArns, CancellationToken cancellationToken)
    {
        var request = new PeerUndeliverableRequest { Holder = Self, TaskArns = { taskArns } };
        if (await OnLeaderAsync(leader => leader.UndeliverableAsync(request, cancellationToken: cancellationToken), cancellationToken) is not null)
        {
            return;
        }

        await state.ApplyAsync((s, c) => TaskCommands.Undeliverable(s, taskArns, AgentChannelService.DesiredChunkBytes, c), cancellationToken);
    }

    /// <summary>
    /// On the leader: the agents another coordinator holds whose heartbeats arrive there. One marked disconnected
    /// is connected again (its heartbeats resumed); one the state says another coordinator holds is not its to vouch for.
    /// </summary>
    public async Task AliveAsync(string holder, IEnumerable<string> containerInstanceArns, CancellationToken cancellationToken)
    {
        var now = time.GetTimestamp();
        foreach (var arn in containerInstanceArns)
        {
            var connection = state.Current.Connections.GetValueOrDefault(arn);
            if (connection is { Connected: true } && connection.Holder == holder)
            {
                _alive[arn] = now;
            }
            else if (connection is not { Connected: true })
            {
                _alive[arn] = now;
                await state.ApplyAsync((s, c) => ContainerInstanceCommands.Reconnected(s, arn, c, holder), cancellationToken);
            }
        }
    }

    /// <summary>When the leader last heard of the agent from the coordinator holding it; null if never.</summary>
    public long? LastAlive(string containerInstanceArn) => _alive.TryGetValue(containerInstanceArn, out var at) ? at : null;

    /// <summary>
    /// Makes a call on the leader's <see cref="AgentPeers"/> and returns its answer, or null at once when this
    /// coordinator leads (the caller applies it here). A leader that does not answer (it died, and its lease has yet to
    /// end; it no longer leads) is asked again, or whichever leads next, for as long as an election takes:
    /// the agents a follower holds ride out a change of leader on their streams.
    /// </summary>
    private async Task<T?> OnLeaderAsync<T>(Func<AgentPeers.AgentPeersClient, AsyncUnaryCall<T>> call, CancellationToken cancellationToken)
        where T : class
    {
        var giveUp = DateTime.UtcNow + ElectionWait;
        while (true)
        {
            LeaderRecord? leader;
            try
            {
                leader = await role.LeaderAsync(LeaderForwarder.LeaderWait, cancellationToken);
            }
            catch (EcsException e)
            {
                throw new RpcException(new Status(StatusCode.Unavailable, e.Message));
            }

            if (leader is null)
            {
                return null;
            }

            try
            {
                return await call(new AgentPeers.AgentPeersClient(forwarder.ChannelTo(leader.Address)));
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded && DateTime.UtcNow < giveUp && !cancellationToken.IsCancellationRequested)
            {
                await Task.WhenAny(role.Changed, Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken));
            }
        }
    }
}
