using EcsLite.Coordinator.Secrets;
using EcsLite.Coordinator.Security;
using EcsLite.Coordinator.Store;

namespace EcsLite.Coordinator.State;

/// <summary>
/// A coordinator that follows the leader of an etcd store keeps what it answers current from the store:
/// the cluster state from its watch, revision by revision as the leader wrote it; the users, keys, join tokens
/// and secrets (small) read again whenever theirs change. A watch that breaks resumes where it was; one whose
/// history is gone (compacted, or it fell behind) reads everything again.
/// </summary>
public sealed partial class StoreFollower(IKeyValueStore store, ClusterStateMachine state, IamStore iam, SecretStore secrets, ILogger<StoreFollower> logger)
{
    /// <summary>Loads everything, then follows the store until <paramref name="stop"/>; returns once loaded, with the following.</summary>
    public async Task<Task> StartAsync(CancellationToken stop)
    {
        var revision = await state.LoadFollowingAsync(stop);
        await iam.LoadAsync(stop, following: true);
        await secrets.LoadAsync(stop, following: true);
        return Task.WhenAll(
            FollowAsync(StateKeys.Root, revision, (state.ApplyWatchedAsync, _ => state.LoadFollowingAsync(stop)), stop),
            FollowAsync("iam/", revision, Reload(_ => iam.LoadAsync(stop, following: true)), stop),
            FollowAsync("secrets/", revision, Reload(_ => secrets.LoadAsync(stop, following: true)), stop));
    }

    /// <summary>
    /// For what is read whole on every change: how to read it again after a lost history (the store's revision
    /// first, then the read: a change in between is read twice, never missed).
    /// </summary>
    private (Func<WatchResponse, Task> Apply, Func<string, Task<long>> Reload) Reload(Func<WatchResponse?, Task> read) =>
        (response => read(response), async prefix =>
        {
            var revision = (await store.RangeAsync(prefix, CancellationToken.None)).Revision;
            await read(null);
            return revision;
        });

    private async Task FollowAsync(string prefix, long revision, (Func<WatchResponse, Task> Apply, Func<string, Task<long>> Reload) follow, CancellationToken stop)
    {
        var from = revision + 1;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await foreach (var response in store.WatchAsync(prefix, from, stop))
                {
                    await follow.Apply(response);
                    from = response.Revision + 1;
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is CompactedException or WatchLaggedException)
            {
                LogReloading(logger, prefix, e.Message);
                from = await follow.Reload(prefix) + 1;
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                // etcd unreachable or without quorum: what this coordinator holds is answered meanwhile.
                LogWatchFailed(logger, prefix, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stop).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Following the store under {Prefix}: {Reason}; reading it again")]
    private static partial void LogReloading(ILogger logger, string prefix, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Following the store under {Prefix} failed ({Reason}); trying again in a second")]
    private static partial void LogWatchFailed(ILogger logger, string prefix, string reason);
}
