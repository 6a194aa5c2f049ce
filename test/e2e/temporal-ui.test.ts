import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config.ts';
import { startTemporalDevServer } from '../../workers/embedded.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { freePort } from '../support/free-port.ts';

// An operator's session in the Temporal Web UI, in a real browser (Debian's chromium, driven by
// playwright-core) against `npm start`'s dev server: find the VM whose create failed by the
// failed filter, read why on its page, then retry it from "Send an Update" once room was made.
// Screenshots of each step are kept in test-artifacts/temporal-ui/.

const CHROMIUM = '/usr/bin/chromium';
const ARTEFACTS = path.resolve('test-artifacts/temporal-ui');

let h: Harness;
let dev: { address: string; stop(): Promise<void> };
let dataDir: string;
let browser: Browser;
let page: Page;
let ui: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'vagoth-ui-'));
  const [port, uiPort] = [await freePort(), await freePort()];
  dev = await startTemporalDevServer({
    cli: path.resolve(loadConfig().temporal.cli),
    dataDir,
    port,
    uiPort,
  });
  ui = `http://127.0.0.1:${uiPort}`;
  h = await startHarness({ temporalAddress: dev.address });
  await h.api.hosts.register({
    name: 'ui-big',
    driver: 'libvirt',
    uri: await h.simulatedHost('ui-big', { cpus: 4, memoryMiB: 4096 }),
  });
  await mkdir(ARTEFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox'],
  });
  page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await h?.close();
  await dev?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** The text of the page's frame that shows `text`, once one does. */
async function textInFrames(text: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    for (const frame of page.frames()) {
      const body = await frame
        .locator('body')
        .innerText()
        .catch(() => '');
      if (body.includes(text)) return body;
    }
    if (Date.now() > deadline) throw new Error(`no frame of ${page.url()} shows ${text}`);
    await page.waitForTimeout(250);
  }
}

const shot = (name: string) =>
  page.screenshot({ path: path.join(ARTEFACTS, `${name}.png`), fullPage: true });

describe('an operator in the Temporal UI', () => {
  it('finds the failed create by its filter, reads why, and retries it with an Update', async () => {
    const hog = await h.api.vms.create({ name: 'ui-hog', vcpus: 1, memoryMiB: 3500, nics: [] });
    expect(await settle(h, hog.operation)).toMatchObject({ status: 'completed' });
    const late = await h.api.vms.create({
      name: 'ui-late',
      vcpus: 1,
      memoryMiB: 1024,
      nics: [{ network: 'default' }],
      onFailure: 'keep',
    });
    const failed = await settle(h, late.operation);
    expect(failed.status).toBe('failed');

    const query = 'VagothOperationStatus = "failed"';
    const list = `${ui}/namespaces/${h.namespace}/workflows?query=${encodeURIComponent(query)}`;
    await page.goto(list);
    const row = page.getByRole('link', { name: 'vm:ui-late' });
    await row.first().waitFor({ timeout: 15_000 });
    // Exactly the VM whose create failed: not the one running beside it.
    expect(await page.getByRole('link', { name: /^vm:/ }).allInnerTexts()).toEqual(['vm:ui-late']);
    await shot('1-list');
    await row.first().click();
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    // The UI renders user metadata's markdown in frames of its own.
    const details = await textInFrames(failed.error!.message);
    expect(details).toContain('Last operation create failed (NoCapacity)');
    expect(details).toContain('send the Update retry with no input');
    await shot('2-workflow');

    // Room made (the hog goes), the operator sends `retry` from the page: no input.
    const gone = await h.api.vms.decommission({ name: 'ui-hog' });
    expect(await settle(h, gone.operation)).toMatchObject({ status: 'completed' });
    await page.getByRole('button', { name: 'More Actions' }).click();
    await page.getByRole('menuitem', { name: 'Send an Update' }).first().click();
    await page.getByRole('button', { name: 'Select an Update' }).click();
    await page.getByRole('option', { name: 'retry' }).click();
    await shot('3-update');
    await page.getByRole('button', { name: 'Submit' }).click();

    // The VM, as vagoth's API tells it: placed and running, the create completed.
    const deadline = Date.now() + 30_000;
    while ((await h.api.vms.get({ name: 'ui-late' })).state !== 'running') {
      if (Date.now() > deadline) throw new Error('ui-late never ran after the retry');
      await new Promise((r) => setTimeout(r, 250));
    }
    const vm = await h.api.vms.get({ name: 'ui-late' });
    expect(vm).toMatchObject({ state: 'running', host: 'ui-big' });
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await page.reload();
    expect(await textInFrames('is running on host ui-big')).toContain(
      'Last operation: create, completed',
    );
    await shot('4-retried');
  }, 120_000);
});
