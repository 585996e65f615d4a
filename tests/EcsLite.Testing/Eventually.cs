namespace EcsLite.Testing;

/// <summary>Waiting on a condition with a deadline instead of sleeping a fixed time.</summary>
public static class Eventually
{
    /// <summary>Polls <paramref name="condition"/> (every 50 ms unless told) until it holds; returns how long that took.</summary>
    public static async Task<TimeSpan> HoldsAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, TimeSpan? every = null)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (!await condition())
        {
            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"{what} did not happen within {timeout}");
            }

            await Task.Delay(every ?? TimeSpan.FromMilliseconds(50));
        }

        return watch.Elapsed;
    }

    public static Task<TimeSpan> HoldsAsync(Func<bool> condition, TimeSpan timeout, string what, TimeSpan? every = null) =>
        HoldsAsync(() => Task.FromResult(condition()), timeout, what, every);

    /// <summary>GETs <paramref name="url"/> until it answers (the server may still be starting); returns the page.</summary>
    public static async Task<string> PageAsync(string url, TimeSpan timeout)
    {
        using var http = new HttpClient();
        var page = "";
        await HoldsAsync(async () =>
        {
            try
            {
                page = await http.GetStringAsync(url);
                return true;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, timeout, $"a page at {url}");
        return page;
    }
}
