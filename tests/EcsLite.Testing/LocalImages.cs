namespace EcsLite.Testing;

/// <summary>The images tests run, built once per machine from busybox-static (images/build-local-images.sh).</summary>
public static class LocalImages
{
    public const string Busybox = "ecslite/busybox:latest";

    /// <summary>Stands in for the Apache image of the seed's task definition: sh and httpd-foreground.</summary>
    public const string Httpd = "httpd:2.4";

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static bool _built;

    public static async Task EnsureAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_built)
            {
                return;
            }

            var (code, output) = await ProcessRunner.RunAsync("sh", [Path.Combine(AppContext.BaseDirectory, "images", "build-local-images.sh")], timeoutSeconds: 120);
            if (code != 0)
            {
                throw new InvalidOperationException($"building the local images failed: {output}");
            }

            _built = true;
        }
        finally
        {
            Gate.Release();
        }
    }
}
