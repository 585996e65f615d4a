// The register-run-describe-stop flow with the AWS SDK for JavaScript v3, against the endpoint in
// ECSLITE_ENDPOINT (credentials, region and the CA from the environment, as the SDK reads them).
import { readFileSync } from "node:fs";
import {
  ECSClient, RegisterTaskDefinitionCommand, RunTaskCommand, DescribeTasksCommand, StopTaskCommand,
  waitUntilTasksRunning, waitUntilTasksStopped,
} from "@aws-sdk/client-ecs";

const ecs = new ECSClient({ endpoint: process.env.ECSLITE_ENDPOINT, region: "local", maxAttempts: 1 });
const definition = JSON.parse(readFileSync(process.argv[2], "utf8"));
const registered = await ecs.send(new RegisterTaskDefinitionCommand(definition));
console.log("registered", registered.taskDefinition.taskDefinitionArn, registered.taskDefinition.registeredAt instanceof Date);

const run = await ecs.send(new RunTaskCommand({
  taskDefinition: definition.family, launchType: "FARGATE", startedBy: "js-sdk",
  networkConfiguration: { awsvpcConfiguration: { subnets: ["subnet-home"] } },
}));
const taskArn = run.tasks[0].taskArn;
await waitUntilTasksRunning({ client: ecs, minDelay: 1, maxDelay: 2, maxWaitTime: 90 }, { tasks: [taskArn] });
const task = (await ecs.send(new DescribeTasksCommand({ tasks: [taskArn] }))).tasks[0];
console.log("running", task.lastStatus, task.startedBy, task.startedAt.toISOString());

await ecs.send(new StopTaskCommand({ task: taskArn, reason: "js-sdk" }));
await waitUntilTasksStopped({ client: ecs, minDelay: 1, maxDelay: 2, maxWaitTime: 90 }, { tasks: [taskArn] });
const stopped = (await ecs.send(new DescribeTasksCommand({ tasks: [taskArn] }))).tasks[0];
console.log("stopped", stopped.lastStatus, stopped.stoppedReason);

try {
  await ecs.send(new RunTaskCommand({ taskDefinition: "no-such-family" }));
  console.log("error none");
} catch (e) {
  console.log("error", e.name, e.$metadata.httpStatusCode);
}
