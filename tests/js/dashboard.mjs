// The dashboard in a real browser (Debian's Chromium, driven by playwright-core), against a live cluster
// the calling test (DashboardTests) set up. Prints what the page showed, as JSON, for the test to check
// against the API; keeps screenshots in SCREENSHOTS.
// Environment: URL (https://HOST:PORT), KEY_ID, SECRET, SCREENSHOTS, CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';

const { URL: base, KEY_ID: keyId, SECRET: secret, SCREENSHOTS: shots } = process.env;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
const seen = {};
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const consoleErrors = [];
  // Chromium drops its connections when the machine's network interfaces change (other tests' containers
  // and namespaces come and go): such failures are the machine's, and the page must ride them out.
  seen.networkChanged = 0;
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (m.text().includes('ERR_NETWORK_CHANGED')) seen.networkChanged++;
    else consoleErrors.push(m.text());
  });
  // The test's own calls from the page ride the same changes out: a fetch that failed at the network
  // (TypeError, no response) is sent again. RunTask carries a clientToken, so a repeat starts nothing twice.
  await page.addInitScript(() => {
    window.fetchAgain = async (...args) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await fetch(...args);
        } catch (e) {
          if (attempt >= 4 || !(e instanceof TypeError)) throw e;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    };
  });
  const open = async (attempt = 0) => {
    try {
      await page.goto(`${base}/dashboard/`);
    } catch (e) {
      if (attempt > 3 || !String(e).includes('ERR_NETWORK_CHANGED')) throw e;
      seen.networkChanged++;
      await open(attempt + 1);
    }
  };

  // Without a credential: the sign-in form, and every data path refused.
  await open();
  await page.locator('#login').waitFor();
  await page.screenshot({ path: `${shots}/1-sign-in.png` });
  seen.unauthenticated = await page.evaluate(async () => {
    const json = { 'content-type': 'application/x-amz-json-1.1' };
    const api = await fetchAgain('/', { method: 'POST', headers: { ...json, 'x-amz-target': 'AmazonEC2ContainerServiceV20141113.ListClusters' }, body: '{}' });
    const stream = await fetchAgain('/stream', { method: 'POST', headers: { ...json, 'x-amz-target': 'ecslite.v1.Events.WatchEvents' }, body: '{}' });
    const metrics = await fetchAgain('/metrics');
    return { api: api.status, apiError: (await api.json()).__type, stream: stream.status, streamError: (await stream.json()).__type, metrics: metrics.status };
  });
  seen.dashboardHiddenBeforeSignIn = await page.locator('#dashboard').isHidden();

  // A wrong secret is refused in the API's words.
  await page.fill('#key-id', keyId);
  await page.fill('#key-secret', `${secret}x`);
  await page.click('button[type=submit]');
  await page.locator('#login-error:not(:empty)').waitFor();
  seen.wrongSecret = await page.textContent('#login-error');

  // Signed in: the cluster, live.
  await page.fill('#key-secret', secret);
  await page.click('button[type=submit]');
  await page.locator('#live.live').waitFor();
  consoleErrors.length = 0; // the refusals above were meant to be logged; from here on nothing should be
  await page.waitForFunction(() => document.body.dataset.refreshed && document.querySelectorAll('#instances tbody tr').length > 0);
  await page.waitForFunction(() => document.querySelector('#placement-failures li:not(.none)'));
  seen.summary = await page.$$eval('#summary .card', (cards) => Object.fromEntries(cards.map((c) => [c.querySelector('span').textContent, Number(c.querySelector('b').textContent)])));
  seen.instances = await page.$$eval('#instances tbody tr', (rows) => rows.map((r) => ({
    arn: r.dataset.instance, status: r.cells[1].textContent, agent: r.cells[2].textContent, cpu: r.cells[3].textContent, memory: r.cells[4].textContent,
  })));
  seen.services = await page.$$eval('#services .service', (list) => list.map((s) => ({
    name: s.dataset.service, counts: s.querySelector('.counts').textContent,
    deployments: [...s.querySelectorAll('.deployment')].map((d) => d.textContent),
    events: [...s.querySelectorAll('.events li')].map((e) => e.textContent),
  })));
  seen.placementFailures = await page.$$eval('#placement-failures li', (items) => items.map((i) => i.textContent));
  seen.tasks = await page.$$eval('#tasks tbody tr', (rows) => rows.map((r) => ({ arn: r.dataset.task, lastStatus: r.cells[2].textContent, definition: r.cells[1].textContent })));
  await page.screenshot({ path: `${shots}/2-cluster.png`, fullPage: true });

  // A task's log lines, followed: new ones arrive without a reload.
  const talker = seen.tasks.find((t) => t.definition.startsWith('talker:') && t.lastStatus === 'RUNNING');
  await page.click(`#tasks tr[data-task="${talker.arn}"]`);
  await page.waitForFunction(() => /hello from the talker/.test(document.querySelector('#logs').textContent));
  const first = (await page.textContent('#logs')).trim().split('\n').length;
  await page.waitForFunction((n) => document.querySelector('#logs').textContent.trim().split('\n').length > n + 1, first);
  seen.logLines = (await page.textContent('#logs')).trim().split('\n');
  await page.screenshot({ path: `${shots}/3-logs.png`, fullPage: true });

  // Live: a task started elsewhere appears without a reload (the event stream refreshes the view).
  const started = Date.now();
  const arn = await page.evaluate(async ([id, key]) => {
    const { signedHeaders } = await import('/dashboard/sigv4.js');
    const body = JSON.stringify({ taskDefinition: 'talker', clientToken: crypto.randomUUID() });
    const region = document.querySelector('meta[name="ecslite-region"]').content;
    const headers = await signedHeaders({ accessKeyId: id, secret: key, region, service: 'ecs', path: '/', target: 'AmazonEC2ContainerServiceV20141113.RunTask', body });
    return (await (await fetchAgain('/', { method: 'POST', headers, body })).json()).tasks[0].taskArn;
  }, [keyId, secret]);
  await page.locator(`#tasks tr[data-task="${arn}"]`).waitFor({ timeout: 10000 });
  seen.liveTask = { arn, appearedAfterMs: Date.now() - started };
  seen.consoleErrors = consoleErrors;
  await page.screenshot({ path: `${shots}/4-live.png`, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
