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
/// <c>ecslite-coordinator key|user|policy ...</c>: IAM calls made through the admin socket of the
/// coordinator running on this host, so they take effect at once and are audited like any call.
/// </summary>
public static class AdminCommands
{
    public static readonly string[] Names = ["key", "user", "policy"];

    public static async Task<int> RunAsync(string[] args)
    {
        var rest = new List<string>();
        var socket = CoordinatorOptions.DefaultAdminSocket();
        var user = Core.Security.IamState.AdminUser;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--admin-socket" && i + 1 < args.Length)
            {
                socket = args[++i];
            }
            else if (args[i] == "--user" && i + 1 < args.Length)
            {
                user = args[++i];
            }
            else
            {
                rest.Add(args[i]);
            }
        }

        using var channel = AdminSocket.Dial(socket);
        var iam = new Iam.IamClient(channel);
        try
        {
            switch (rest.ToArray())
            {
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
}
