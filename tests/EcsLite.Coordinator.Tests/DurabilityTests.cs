using System.Collections.Concurrent;
using EcsLite.Api.V1;
using EcsLite.Coordinator.Store;
using EcsLite.Testing;
using Grpc.Core;
using Microsoft.Data.Sqlite;

namespace EcsLite.Coordinator.Tests;

/// <summary>The real process killed and restarted on the same data directory.</summary>
public class DurabilityTests
{
    [Theory]
    [InlineData(100)]
    [InlineData(1500)]
    public async Task SIGKILL_during_registrations_loses_no_acknowledged_registration(int killAfterAcknowledged)
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        var acknowledged = new ConcurrentBag<(string Family, int Revision, int Memory)>();
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var family = $"family-{w % 3}";
                var memory = 16 + (w * 100_000) + i;
                try
                {
                    var reply = await coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
                    {
                        Family = family,
                        ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = memory } },
                    });
                    acknowledged.Add((family, reply.TaskDefinition.Revision, memory));
                }
                catch (RpcException)
                {
                    return; // the process is gone; what was not acknowledged may or may not be stored
                }
            }
        })).ToArray();

        // Kill mid-stream: once this many registrations are acknowledged, while the writers keep going.
        await Eventually.HoldsAsync(() => acknowledged.Count >= killAfterAcknowledged, TimeSpan.FromSeconds(60), $"{killAfterAcknowledged} acknowledged registrations");
        await coordinator.KillAsync();
        stop.Cancel();
        await Task.WhenAll(writers);
        Assert.True(acknowledged.Count >= killAfterAcknowledged);

        AssertIntegrity(coordinator.DataDir);
        await coordinator.StartAgainAsync();

        foreach (var (family, revision, memory) in acknowledged)
        {
            var described = await coordinator.Ecs.DescribeTaskDefinitionAsync(new DescribeTaskDefinitionRequest { TaskDefinition = $"{family}:{revision}" });
            Assert.Equal(memory, described.TaskDefinition.ContainerDefinitions[0].Memory);
        }

        // Consistent: every family's revisions run 1..N without holes, and the next one is N+1.
        foreach (var family in acknowledged.Select(a => a.Family).Distinct())
        {
            var arns = new List<string>();
            string? token = null;
            do
            {
                var page = await coordinator.Ecs.ListTaskDefinitionsAsync(new ListTaskDefinitionsRequest { FamilyPrefix = family, NextToken = token ?? "" });
                arns.AddRange(page.TaskDefinitionArns);
                token = page.HasNextToken ? page.NextToken : null;
            }
            while (token is not null);

            var revisions = arns.Select(a => int.Parse(a[(a.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(Enumerable.Range(1, revisions.Count), revisions);
            Assert.True(revisions.Count >= acknowledged.Where(a => a.Family == family).Max(a => a.Revision));
            var next = await coordinator.Ecs.RegisterTaskDefinitionAsync(new RegisterTaskDefinitionRequest
            {
                Family = family,
                ContainerDefinitions = { new ContainerDefinition { Name = "app", Image = "busybox", Memory = 16 } },
            });
            Assert.Equal(revisions.Count + 1, next.TaskDefinition.Revision);
        }
    }

    [Fact]
    public async Task SIGTERM_stops_gracefully_and_a_restart_keeps_clusters_and_does_not_recreate_a_deleted_default()
    {
        await using var coordinator = await CoordinatorProcess.StartAsync();
        await coordinator.Ecs.CreateClusterAsync(new CreateClusterRequest { ClusterName = "kept" });
        await coordinator.Ecs.DeleteClusterAsync(new DeleteClusterRequest { Cluster = "default" });

        Assert.Equal(0, await coordinator.StopAsync());
        Assert.Contains("Stopped; all acknowledged writes are in the cluster store", coordinator.Output, StringComparison.Ordinal);
        await coordinator.StartAgainAsync();

        var described = await coordinator.Ecs.DescribeClustersAsync(new DescribeClustersRequest { Clusters = { "kept", "default" } });
        Assert.Equal(["ACTIVE", "INACTIVE"], described.Clusters.Select(c => c.Status));
        Assert.Equal("INACTIVE", (await coordinator.Ecs.DescribeClustersAsync(new DescribeClustersRequest())).Clusters[0].Status);
        var error = await Assert.ThrowsAsync<RpcException>(async () => await coordinator.Ecs.DeleteClusterAsync(new DeleteClusterRequest { Cluster = "default" }));
        Assert.Equal("ClusterNotFoundException", error.Trailers.GetValue("ecs-error-type"));
    }

    private static void AssertIntegrity(string dataDir)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(dataDir, SqliteKeyValueStore.FileName)}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA integrity_check";
        Assert.Equal("ok", command.ExecuteScalar());
    }
}
