using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace EcsLite.Agent.Docker;

/// <summary>What a failed engine call means for the caller.</summary>
public enum CallFailure
{
    /// <summary>May work if tried again: a 5xx, a timeout, a broken connection, a garbled answer.</summary>
    Transient,

    /// <summary>The engine is not there (its socket refuses or is missing): it is restarting or stopped.</summary>
    EngineUnavailable,

    /// <summary>404: the container, image or volume does not exist.</summary>
    NotFound,

    /// <summary>409: a container of that name exists already.</summary>
    Conflict,

    /// <summary>Any other 4xx: the request itself is wrong, and trying again will not help.</summary>
    Permanent,
}

public static class DockerErrors
{
    /// <summary>
    /// Sorts an engine call's failure, or returns null for an exception no engine call throws (a bug:
    /// the supervisor's last line of defence handles those).
    /// </summary>
    public static CallFailure? Classify(Exception e) => e switch
    {
        DockerApiException { StatusCode: HttpStatusCode.NotFound } => CallFailure.NotFound,
        DockerApiException { StatusCode: HttpStatusCode.Conflict } => CallFailure.Conflict,
        DockerApiException api when (int)api.StatusCode is >= 400 and < 500 => CallFailure.Permanent,
        DockerApiException => CallFailure.Transient,
        HttpRequestException { InnerException: SocketException socket } when socket.SocketErrorCode
            is SocketError.ConnectionRefused or SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported => CallFailure.EngineUnavailable,
        SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.AddressNotAvailable } => CallFailure.EngineUnavailable,
        HttpRequestException or IOException or TimeoutException or OperationCanceledException or JsonException => CallFailure.Transient,
        _ => null,
    };

    /// <summary>The engine's own words for a failure, for a container's reason.</summary>
    public static string Message(Exception e) => e switch
    {
        DockerApiException api => api.ResponseBody.Trim(),
        OperationCanceledException or TimeoutException => "the Docker engine did not answer in time",
        HttpRequestException { InnerException: SocketException socket } => $"cannot reach the Docker engine: {socket.Message}",
        _ => e.Message,
    };
}
