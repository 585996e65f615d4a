namespace EcsLite.Agent.Core.Tests;

public class LogTextTests
{
    [Fact]
    public void Text_from_outside_is_bounded_and_its_control_characters_escaped()
    {
        Assert.Equal("pull image a\\u0000b: no\\u000abasic auth", LogText.Printable("pull image a\0b: no\nbasic auth"));
        var huge = LogText.Printable(new string('x', 1_000_000), 1024);
        Assert.Equal(1027, huge.Length);
        Assert.EndsWith("...", huge, StringComparison.Ordinal);
        Assert.Equal("plain: é ✓", LogText.Printable("plain: é ✓"));
    }
}
