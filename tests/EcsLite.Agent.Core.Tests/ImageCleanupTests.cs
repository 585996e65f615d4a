using EcsLite.Agent.Core.Images;

namespace EcsLite.Agent.Core.Tests;

public class ImageCleanupTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Only_unused_tracked_images_old_enough_go_least_recently_used_first_and_at_most_the_maximum()
    {
        var lastUsed = new Dictionary<string, DateTimeOffset>
        {
            ["app:1"] = Now.AddHours(-5),
            ["app:2"] = Now.AddHours(-3),
            ["app:3"] = Now.AddHours(-2),
            ["db:1"] = Now.AddHours(-9),      // still used by a container
            ["fresh:1"] = Now.AddMinutes(-10), // used too recently
        };
        var inUse = new HashSet<string> { "db:1", "sha256:abc" };

        Assert.Equal(["app:1", "app:2"], ImageCleanup.Select(lastUsed, inUse, Now, TimeSpan.FromHours(1), maximum: 2));
        Assert.Equal(["app:1", "app:2", "app:3"], ImageCleanup.Select(lastUsed, inUse, Now, TimeSpan.FromHours(1), maximum: 5));
        Assert.Equal(["app:1", "app:2", "app:3", "fresh:1"], ImageCleanup.Select(lastUsed, inUse, Now, TimeSpan.Zero, maximum: 5));
        Assert.Empty(ImageCleanup.Select(lastUsed, inUse, Now, TimeSpan.FromHours(10), maximum: 5));
    }
}
