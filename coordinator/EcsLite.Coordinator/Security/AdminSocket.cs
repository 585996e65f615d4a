using System.Net.Sockets;
using EcsLite.Api.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace EcsLite.Coordinator.Security;

/// <summary>The admin socket: made ready for the server, and dialled by the administration commands.</summary>
public static class AdminSocket
{
    /// <summary>The connection item that marks a connection as made through the admin socket.</summary>
    public const string Marker = "ecslite-admin-socket";

    /// <summary>Connection middleware for the admin socket's listener: marks each of its connections.</summary>
    public static void Mark(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen) =>
        listen.Use(next => connection =>
        {
            connection.Items[Marker] = true;
            return next(connection);
        });

    /// <summary>
    /// Creates the socket's directory (0700, so nobody else can even reach the socket while it is being
    /// made) and removes a stale socket left by a coordinator that did not stop cleanly. A socket that
    /// still answers belongs to a running coordinator: that is an error, not something to take over.
    /// </summary>
    public static string Prepare(string path)
    {
        var directory = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        if (File.Exists(path))
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new InvalidOperationException($"The admin socket {path} is in use by another coordinator; give this one its own (--admin-socket).");
            }
            catch (SocketException)
            {
                File.Delete(path);
            }
        }

        return path;
    }

    /// <summary>A gRPC channel over the admin socket (HTTP/2 without TLS: the socket's file mode is the protection).</summary>
    public static GrpcChannel Dial(string path) =>
        GrpcChannel.ForAddress("http://admin-socket", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            },
        });
}

/// <summary>
/// <c>ecslite-coordinator key|user|policy|token ...</c>: IAM and activation calls made through the admin
/// socket of the coordinator running on this host, so they take effect at once and are audited like
/// any call. The socket is --admin-socket, else the AdminSocket of --config or ECSLITE_ADMINSOCKET, else the default.
/// </summary>
public static class AdminCommands
{
    public static readonly string[] Names = ["key", "user", "policy", "token", "parameter", "secret", "secrets"];

    public static async Task<int> RunAsync(string[] args)
    {
        var rest = new List<string>();
        var socket = Environment.GetEnvironmentVariable("ECSLITE_ADMINSOCKET") is { Length: > 0 } fromEnvironment ? fromEnvironment : CoordinatorOptions.DefaultAdminSocket();
        var user = Core.Security.IamState.AdminUser;
        var token = new CreateActivationRequest { RegistrationLimit = 1 };
        var ttl = Core.Security.JoinTokenState.DefaultTtl;
        var parameterType = "SecureString";
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                var value = i + 1 < args.Length ? args[i + 1] : null;
                switch (args[i])
                {
                    case "--admin-socket" when value is not null:
                        socket = value;
                        break;
                    case "--config" when value is not null:
                        using (var config = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(value)))
                        {
                            socket = config.RootElement.TryGetProperty("AdminSocket", out var configured) ? configured.GetString() ?? socket : socket;
                        }

                        break;
                    case "--user" when value is not null:
                        user = value;
                        break;
                    case "--ttl" when value is not null:
                        ttl = Duration(value);
                        break;
                    case "--cluster" when value is not null:
                        token.Cluster = value;
                        break;
                    case "--uses" when value is not null:
                        token.RegistrationLimit = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                        break;
                    case "--description" when value is not null:
                        token.Description = value;
                        break;
                    case "--type" when value is not null:
                        parameterType = value;
                        break;
                    default:
                        rest.Add(args[i]);
                        continue;
                }

                i++;
            }
        }
        catch (Exception e) when (e is FormatException or OverflowException or IOException or System.Text.Json.JsonException)
        {
            Console.Error.WriteLine($"ecslite-coordinator: {e.Message}");
            return 2;
        }

        using var channel = AdminSocket.Dial(socket);
        var iam = new Iam.IamClient(channel);
        var activations = new Activations.ActivationsClient(channel);
        var secrets = new global::EcsLite.Api.V1.Secrets.SecretsClient(channel);
        try
        {
            switch (rest.ToArray())
            {
                // Values come from standard input, never the command line (which other users and the shell's history see).
                case ["parameter", "put", var name]:
                    var version = await secrets.PutParameterAsync(new PutParameterRequest { Name = name, Type = parameterType, Value = ReadValue(), Overwrite = true });
                    Console.Error.WriteLine($"# parameter {name}: version {version.Version}");
                    return 0;
                case ["secret", "put", var name]:
                    var value = ReadValue();
                    var listed = await secrets.ListSecretsAsync(new ListSecretsRequest { Filters = { new SecretsFilter { Key = "name", Values = { name } } } });
                    var arn = listed.SecretList.Any(s => s.Name == name)
                        ? (await secrets.PutSecretValueAsync(new PutSecretValueRequest { SecretId = name, SecretString = value })).ARN
                        : (await secrets.CreateSecretAsync(new CreateSecretRequest { Name = name, SecretString = value })).ARN;
                    Console.WriteLine(arn);
                    return 0;
                case ["secrets", "rotate-key"]:
                    var rotated = await secrets.RotateKeyOnDemandAsync(new RotateKeyOnDemandRequest());
                    Console.Error.WriteLine($"# new key {rotated.KeyId}; {rotated.ReEncrypted} value(s) re-encrypted; the old key is forgotten");
                    return 0;
                case ["token", "create"]:
                    token.ExpirationDate = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow + ttl);
                    var created = await activations.CreateActivationAsync(token);
                    Console.WriteLine(created.JoinToken);
                    Console.Error.WriteLine($"# join token {created.ActivationId}: {token.RegistrationLimit} host(s), until {token.ExpirationDate.ToDateTimeOffset():u}"
                        + (token.Cluster.Length > 0 ? $", cluster {token.Cluster}" : "") + "; on the new host: ECSLITE_JOIN_TOKEN=<token> in /etc/ecslite/agent.conf");
                    return 0;
                case ["token", "list"]:
                    Console.WriteLine("ACTIVATION_ID	USED/LIMIT	EXPIRES	CLUSTER	DESCRIPTION");
                    foreach (var a in (await activations.DescribeActivationsAsync(new DescribeActivationsRequest())).ActivationList)
                    {
                        Console.WriteLine($"{a.ActivationId}	{a.RegistrationsCount}/{a.RegistrationLimit}	{(a.Expired ? "expired" : a.ExpirationDate.ToDateTimeOffset().ToString("u"))}	{(a.Cluster.Length > 0 ? a.Cluster : "(any)")}	{a.Description}");
                    }

                    return 0;
                case ["token", "revoke" or "delete", var id]:
                    await activations.DeleteActivationAsync(new DeleteActivationRequest { ActivationId = id });
                    return 0;
                case ["key", "create"]:
                    var key = (await iam.CreateAccessKeyAsync(new CreateAccessKeyRequest { UserName = user })).AccessKey;
                    Console.WriteLine($"""
                        # access key of user {key.UserName}; the secret is shown this once
                        [default]
                        aws_access_key_id = {key.AccessKeyId}
                        aws_secret_access_key = {key.SecretAccessKey}
                        """);
                    return 0;
                case ["key", "list"]:
                    foreach (var k in (await iam.ListAccessKeysAsync(new ListAccessKeysRequest { UserName = user })).AccessKeyMetadata)
                    {
                        Console.WriteLine($"{k.AccessKeyId}\t{k.Status}\t{k.CreateDate.ToDateTimeOffset():u}\t{k.UserName}");
                    }

                    return 0;
                case ["key", "disable" or "enable", var id]:
                    await iam.UpdateAccessKeyAsync(new UpdateAccessKeyRequest { UserName = user, AccessKeyId = id, Status = rest[1] == "disable" ? "Inactive" : "Active" });
                    return 0;
                case ["key", "delete", var id]:
                    await iam.DeleteAccessKeyAsync(new DeleteAccessKeyRequest { UserName = user, AccessKeyId = id });
                    return 0;
                case ["user", "create", var name]:
                    Console.WriteLine((await iam.CreateUserAsync(new CreateUserRequest { UserName = name })).User.Arn);
                    return 0;
                case ["user", "delete", var name]:
                    await iam.DeleteUserAsync(new DeleteUserRequest { UserName = name });
                    return 0;
                case ["user", "list"]:
                    foreach (var u in (await iam.ListUsersAsync(new ListUsersRequest())).Users)
                    {
                        Console.WriteLine($"{u.UserName}\t{u.Arn}");
                    }

                    return 0;
                case ["policy", "put", var name, var policyName, var file]:
                    await iam.PutUserPolicyAsync(new PutUserPolicyRequest { UserName = name, PolicyName = policyName, PolicyDocument = await File.ReadAllTextAsync(file) });
                    return 0;
                default:
                    Console.Error.WriteLine("ecslite-coordinator: unknown administration command; see --help");
                    return 2;
            }
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"ecslite-coordinator: {e.Status.Detail}");
            return 1;
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or IOException)
        {
            Console.Error.WriteLine($"ecslite-coordinator: cannot reach the coordinator's admin socket {socket}: {e.Message}");
            return 1;
        }
    }

    /// <summary>A value from standard input, without the line end a shell's echo or heredoc adds.</summary>
    private static string ReadValue() => Console.In.ReadToEnd().TrimEnd('\n', '\r');

    /// <summary>A duration as 90s, 30m, 24h or 7d.</summary>
    public static TimeSpan Duration(string text)
    {
        if (text.Length >= 2 && long.TryParse(text[..^1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n <= 100_000)
        {
            switch (text[^1])
            {
                case 's': return TimeSpan.FromSeconds(n);
                case 'm': return TimeSpan.FromMinutes(n);
                case 'h': return TimeSpan.FromHours(n);
                case 'd': return TimeSpan.FromDays(n);
            }
        }

        throw new FormatException($"--ttl '{text}' is a number and a unit: 90s, 30m, 24h or 7d");
    }
}
