// The EcsLite dashboard: read-only, through the same JSON API the AWS CLI uses (each call signed with
// the signed-in access key), refreshed live from the cluster's event stream (POST /stream).
import { signedHeaders } from './sigv4.js';

const region = document.querySelector('meta[name="ecslite-region"]').content;
const targets = { ecs: 'AmazonEC2ContainerServiceV20141113', logs: 'Logs_20140328' };
const $ = (id) => document.getElementById(id);
let credentials = JSON.parse(sessionStorage.getItem('ecslite-key') ?? 'null');
let cluster = sessionStorage.getItem('ecslite-cluster') ?? 'default';
let following = null; // the event stream's AbortController
let logs = null; // the followed task's log stream
let selectedTask = null;
let refreshTimer = null;
let lastTasks = [];

class ApiError extends Error {
  constructor(type, message) { super(`${type}: ${message}`); this.type = type; }
}

/** Every call the page makes only reads, so one the network dropped (no response: a TypeError) is sent again. */
async function call(service, action, body = {}) {
  const text = JSON.stringify(body);
  const headers = await signedHeaders({ ...credentials, region, service, path: '/', target: `${targets[service]}.${action}`, body: text });
  let response;
  for (let attempt = 0; !response; attempt++) {
    try {
      response = await fetch('/', { method: 'POST', headers, body: text });
    } catch (e) {
      if (attempt >= 3 || !(e instanceof TypeError)) throw e;
      await new Promise((done) => setTimeout(done, 500 * 2 ** attempt));
    }
  }
  const json = await response.json();
  if (!response.ok) throw new ApiError(json.__type, json.message);
  return json;
}

/** A server-streaming RPC: each server-sent event's JSON to onMessage, until the stream ends or signal aborts it. */
async function stream(target, body, onMessage, signal) {
  const text = JSON.stringify(body);
  const headers = await signedHeaders({ ...credentials, region, service: 'ecs', path: '/stream', target, body: text });
  const response = await fetch('/stream', { method: 'POST', headers, body: text, signal });
  if (!response.ok) {
    const json = await response.json();
    throw new ApiError(json.__type, json.message);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const lines = buffer.slice(0, end).split('\n');
      buffer = buffer.slice(end + 2);
      const data = JSON.parse(lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'));
      if (lines.includes('event: error')) throw new ApiError(data.__type, data.message);
      onMessage(data);
    }
  }
}

async function listAll(action, body, field, pages = 10) {
  const all = [];
  let nextToken;
  for (let page = 0; page < pages; page++) {
    const result = await call('ecs', action, { ...body, ...(nextToken ? { nextToken } : {}) });
    all.push(...result[field]);
    nextToken = result.nextToken;
    if (!nextToken) break;
  }
  return all;
}

async function describeAll(action, arns, size, key, body, field) {
  const all = [];
  for (let i = 0; i < arns.length; i += size) {
    all.push(...(await call('ecs', action, { ...body, [key]: arns.slice(i, i + size) }))[field]);
  }
  return all;
}

// ---- rendering (text only: nothing the API returns is ever parsed as HTML) ----

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === 'class') node.className = value;
    else if (name === 'on') for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
}

const pill = (text, kind = text) => el('span', { class: `pill ${kind}` }, text);
const id = (arn) => (arn ?? '').split('/').pop();
const family = (arn) => (arn ?? '').split('/').pop();
const time = (seconds) => (seconds ? new Date(seconds * 1000).toLocaleString() : '');
const resource = (list, name) => (list ?? []).find((r) => r.name === name)?.integerValue ?? 0;

function bar(value, total, label) {
  const share = total > 0 ? Math.min(100, (100 * value) / total) : 0;
  const fill = el('i');
  fill.style.width = `${share}%`; // through the CSSOM: the content security policy allows no inline style attributes
  return el('div', { class: 'bar', title: label }, el('span', {}, label), el('div', { class: 'track' }, fill));
}

function renderSummary(described, instances, services, tasks) {
  const card = (value, label) => el('div', { class: 'card' }, el('b', {}, value), el('span', {}, label));
  $('summary').replaceChildren(
    card(instances.length, 'container instances'),
    card(instances.filter((i) => i.status === 'DRAINING').length, 'draining'),
    card(services.filter((s) => s.status === 'ACTIVE').length, 'services'),
    card(described?.runningTasksCount ?? tasks.filter((t) => t.lastStatus === 'RUNNING').length, 'running tasks'),
    card(described?.pendingTasksCount ?? 0, 'pending tasks'),
  );
  $('summary').dataset.running = String(described?.runningTasksCount ?? 0);
}

function renderInstances(instances) {
  $('instances').tBodies[0].replaceChildren(...instances.map((i) => {
    const cpu = [resource(i.remainingResources, 'CPU'), resource(i.registeredResources, 'CPU')];
    const memory = [resource(i.remainingResources, 'MEMORY'), resource(i.registeredResources, 'MEMORY')];
    // What tells hosts apart: custom attributes, the architecture and instance type (not the capabilities every agent has).
    const custom = (i.attributes ?? []).filter((a) => !a.name.startsWith('ecs.') && !a.name.startsWith('com.amazonaws.ecs.')
      || a.name === 'ecs.cpu-architecture' || a.name === 'ecs.instance-type');
    return el('tr', { 'data-instance': i.containerInstanceArn },
      el('td', {}, id(i.containerInstanceArn)),
      el('td', {}, pill(i.status)),
      el('td', {}, i.agentConnected ? pill('connected') : pill('disconnected')),
      el('td', {}, bar(cpu[0], cpu[1], `${cpu[0]} / ${cpu[1]} units`)),
      el('td', {}, bar(memory[0], memory[1], `${memory[0]} / ${memory[1]} MiB`)),
      el('td', {}, `${i.runningTasksCount} running, ${i.pendingTasksCount} pending`),
      el('td', { class: 'attributes' }, custom.map((a) => (a.value ? `${a.name}=${a.value}` : a.name)).join(', ')),
    );
  }));
}

function renderServices(services) {
  $('services').replaceChildren(...(services.length === 0 ? [el('p', {}, 'No services in this cluster.')] : services.map((s) => el('div', { class: 'service', 'data-service': s.serviceName },
    el('h3', {}, s.serviceName, ' ', pill(s.status), ' ', el('span', { class: 'counts' }, `desired ${s.desiredCount} · running ${s.runningCount} · pending ${s.pendingCount}`)),
    (s.deployments ?? []).map((d) => el('div', { class: 'deployment' },
      el('span', {}, `${d.status} ${family(d.taskDefinition)} `, d.rolloutState ? pill(d.rolloutState) : ''),
      bar(d.runningCount, Math.max(d.desiredCount, d.runningCount), `${d.runningCount} running · ${d.desiredCount} desired${d.failedTasks ? ` · ${d.failedTasks} failed` : ''}`),
      el('span', {}, time(d.updatedAt)))),
    el('ul', { class: 'events' }, (s.events ?? []).slice(0, 5).map((e) => el('li', {}, `${time(e.createdAt)} ${e.message}`)))))));

  const failures = services.flatMap((s) => (s.events ?? []).filter((e) => e.message.includes('was unable to place a task')).slice(0, 1));
  $('placement-failures').replaceChildren(...(failures.length === 0 ? [el('li', { class: 'none' }, 'None: every task found a place.')]
    : failures.map((e) => el('li', {}, `${time(e.createdAt)} ${e.message}`))));
}

function renderTasks(tasks) {
  lastTasks = tasks;
  $('tasks').tBodies[0].replaceChildren(...tasks.map((t) => el('tr', {
    class: `selectable${t.taskArn === selectedTask ? ' selected' : ''}`, 'data-task': t.taskArn, on: { click: () => followLogs(t) },
  },
  el('td', {}, id(t.taskArn)),
  el('td', {}, family(t.taskDefinitionArn)),
  el('td', {}, pill(t.lastStatus)),
  el('td', {}, t.desiredStatus),
  el('td', {}, id(t.containerInstanceArn)),
  el('td', {}, time(t.startedAt)),
  el('td', {}, t.stoppedReason ?? ''))));
}

async function refresh() {
  try {
    const clusterArns = (await call('ecs', 'ListClusters')).clusterArns;
    const clusters = clusterArns.length ? (await call('ecs', 'DescribeClusters', { clusters: clusterArns })).clusters : [];
    if (!clusters.some((c) => c.clusterName === cluster) && clusters.length) cluster = clusters[0].clusterName;
    $('cluster').replaceChildren(...clusters.map((c) => el('option', c.clusterName === cluster ? { selected: '' } : {}, c.clusterName)));
    const described = clusters.find((c) => c.clusterName === cluster);

    const instances = await describeAll('DescribeContainerInstances', await listAll('ListContainerInstances', { cluster }, 'containerInstanceArns'), 100, 'containerInstances', { cluster }, 'containerInstances');
    const services = await describeAll('DescribeServices', await listAll('ListServices', { cluster }, 'serviceArns'), 10, 'services', { cluster }, 'services');
    const arns = [...new Set([
      ...await listAll('ListTasks', { cluster, desiredStatus: 'RUNNING' }, 'taskArns', 3),
      ...await listAll('ListTasks', { cluster, desiredStatus: 'STOPPED' }, 'taskArns', 1),
    ])];
    const tasks = (await describeAll('DescribeTasks', arns, 100, 'tasks', { cluster }, 'tasks'))
      .sort((a, b) => (a.lastStatus === 'STOPPED') - (b.lastStatus === 'STOPPED') || (b.createdAt ?? 0) - (a.createdAt ?? 0));

    renderSummary(described, instances, services, tasks);
    renderInstances(instances);
    renderServices(services);
    renderTasks(tasks);
    $('error').textContent = '';
    document.body.dataset.refreshed = String(Date.now());
  } catch (e) {
    $('error').textContent = e.message;
    if (e.type === 'UnrecognizedClientException' || e.type === 'InvalidSignatureException') signOut(e.message);
  }
}

function scheduleRefresh(delay = 250) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, delay);
}

/** The cluster's events, for as long as the page is open: each batch of changes refreshes the view. */
async function follow() {
  following?.abort();
  const controller = following = new AbortController();
  for (let attempt = 0; !controller.signal.aborted; attempt++) {
    try {
      await stream('ecslite.v1.Events.WatchEvents', { cluster }, (message) => {
        $('live').textContent = 'live';
        $('live').className = 'pill live';
        attempt = 0;
        if (message.events?.length) scheduleRefresh();
      }, controller.signal);
    } catch (e) {
      if (controller.signal.aborted) return;
      $('error').textContent = e.message;
    }
    $('live').textContent = 'reconnecting';
    $('live').className = 'pill reconnecting';
    await new Promise((done) => setTimeout(done, Math.min(30000, 1000 * 2 ** attempt)));
    scheduleRefresh(0);
  }
}

/** A task's log lines, followed while it runs; a broken stream is taken up again from the last line's time. */
async function followLogs(task, containerName = task.containers?.[0]?.name) {
  logs?.abort();
  const controller = logs = new AbortController();
  selectedTask = task.taskArn;
  renderTasks(lastTasks);
  $('logs-panel').hidden = false;
  $('logs-task').textContent = id(task.taskArn);
  $('logs-container').replaceChildren(...(task.containers ?? []).map((c) => el('option', c.name === containerName ? { selected: '' } : {}, c.name)));
  $('logs-container').onchange = () => followLogs(task, $('logs-container').value);
  $('logs').textContent = '';
  const follow = task.lastStatus !== 'STOPPED';
  let since = null;
  for (let attempt = 0; !controller.signal.aborted; attempt++) {
    try {
      const request = { cluster, task: task.taskArn, containerName, follow, ...(since === null ? { tail: 500 } : { since }) };
      await stream('ecslite.v1.TaskLogs.GetTaskLogs', request, (message) => {
        attempt = 0;
        for (const event of message.events ?? []) {
          if (since !== null && event.timestamp <= since) continue; // already shown before the stream broke
          $('logs').append(`${event.message}\n`);
          since = event.timestamp;
        }
        $('logs').scrollTop = $('logs').scrollHeight;
      }, controller.signal);
      return; // the coordinator ended it: the task's output is complete
    } catch (e) {
      if (controller.signal.aborted) return;
      if (e instanceof ApiError) {
        $('logs').append(`(${e.message})\n`);
        return;
      }
    }
    await new Promise((done) => setTimeout(done, Math.min(10000, 500 * 2 ** attempt))); // the network dropped it: again, from the last line
  }
}

function show(signedIn) {
  $('login').hidden = signedIn;
  $('dashboard').hidden = !signedIn;
  $('cluster-picker').hidden = !signedIn;
  $('live').hidden = !signedIn;
  $('logout').hidden = !signedIn;
}

function start() {
  show(true);
  refresh();
  follow();
  setInterval(refresh, 15000); // what no event announces: resources left, heartbeats
}

function signOut(reason = '') {
  following?.abort();
  logs?.abort();
  sessionStorage.removeItem('ecslite-key');
  credentials = null;
  show(false);
  $('login-error').textContent = reason;
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  credentials = { accessKeyId: $('key-id').value.trim(), secret: $('key-secret').value };
  try {
    await call('ecs', 'ListClusters');
    sessionStorage.setItem('ecslite-key', JSON.stringify(credentials));
    $('key-secret').value = '';
    start();
  } catch (e) {
    credentials = null;
    $('login-error').textContent = e.message;
  }
});
$('logout').addEventListener('click', () => location.reload(signOut()));
$('cluster').addEventListener('change', () => {
  cluster = $('cluster').value;
  sessionStorage.setItem('ecslite-cluster', cluster);
  refresh();
  follow();
});

if (credentials) start(); else show(false);
