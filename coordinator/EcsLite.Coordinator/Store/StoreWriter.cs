namespace EcsLite.Coordinator.Store;

/// <summary>
/// One writer at a time for a state kept beside the cluster state (users, secrets): a command runs on
/// the current state, its ops are stored (one transaction), and only then is its result published.
/// </summary>
public sealed class StoreWriter(IKeyValueStore store)
{
    private readonly SemaphoreSlim _writer = new(1, 1);

    public Task<T> WriteAsync<T>(Func<(IReadOnlyList<TxnOp> Ops, T Result, Action Publish)> command, CancellationToken cancellationToken) =>
        ExclusiveAsync(async () =>
        {
            var (ops, result, publish) = command();
            await CommitAsync(ops);
            publish();
            return result;
        }, cancellationToken);

    /// <summary>Work that needs the writer for more than one command (a key rotation).</summary>
    public async Task<T> ExclusiveAsync<T>(Func<Task<T>> work, CancellationToken cancellationToken)
    {
        await _writer.WaitAsync(cancellationToken);
        try
        {
            return await work();
        }
        finally
        {
            _writer.Release();
        }
    }

    /// <summary>Stores ops (none: nothing to store) while holding the writer.</summary>
    public Task CommitAsync(IReadOnlyList<TxnOp> ops) =>
        ops.Count > 0 ? store.TxnAsync(Txn.Unconditional(ops), CancellationToken.None) : Task.CompletedTask;
}
