/**
 * report.html in a real headless Chromium with the network cut off: it must render (non-blank
 * screenshot, the four SVG plots laid out with a size) and request nothing but itself.
 * Needs Chromium (CHROMIUM_PATH overrides /usr/bin/chromium; CI installs Debian's): without it the
 * suite fails on CI and is skipped loudly elsewhere.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { PNG } from './png.js';
import { aggregate } from '../../../src/aggregate/index.js';
import { createLogger } from '../../../src/infra/index.js';
import { tempDir, writeFixtureRun } from '../../unit/aggregate/fixtures.js';
import { describeWithTool } from '../../describeWithTool.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const describeWithChromium = describeWithTool({
  tool: `Chromium at ${chromiumPath}`,
  available: existsSync(chromiumPath),
  install: 'apt-get install -y chromium, or set CHROMIUM_PATH',
});

describeWithChromium('report.html in headless Chromium', () => {
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
  });

  test('report.html renders offline in headless Chromium: SVG plots, non-blank, no network request', async () => {
    const dir = await writeFixtureRun(join(tempDir('report'), 'run'));
    const result = await aggregate({
      run: dir,
      logToMlflow: false,
      logger: createLogger({ level: 'error' }),
    });
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      offline: true,
    });
    const page = await context.newPage();
    const pageUrl = pathToFileURL(result.files.reportHtml).toString();
    const requests: string[] = [];
    const failed: string[] = [];
    const consoleErrors: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('requestfailed', (request) => failed.push(request.url()));
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    // Anything but the page itself is refused, so a stray URL would show up as a failed request.
    await context.route('**/*', (route) =>
      route.request().url() === pageUrl ? route.continue() : route.abort(),
    );
    const response = await page.goto(pageUrl, { waitUntil: 'load' });
    expect(response?.ok()).toBe(true);

    const svgs = await page.$$eval('figure svg', (nodes) =>
      nodes.map((node) => {
        const box = node.getBoundingClientRect();
        return {
          width: box.width,
          height: box.height,
          marks: node.querySelectorAll('path').length,
        };
      }),
    );
    expect(svgs).toHaveLength(4);
    for (const svg of svgs) {
      expect(svg.width).toBeGreaterThan(200);
      expect(svg.height).toBeGreaterThan(150);
      expect(svg.marks).toBeGreaterThan(3);
    }
    expect(await page.$$eval('table', (nodes) => nodes.length)).toBeGreaterThanOrEqual(4);

    const screenshotPath = join(dir, 'report-screenshot.png');
    const screenshot = await page.screenshot({ fullPage: true });
    writeFileSync(screenshotPath, screenshot);
    // Non-blank: a good share of pixels are not white, and there are many distinct colours.
    const png = PNG.decode(screenshot);
    const stats = png.inkStats();
    expect(stats.nonWhiteFraction).toBeGreaterThan(0.02);
    expect(stats.distinctColours).toBeGreaterThan(20);

    expect(requests).toEqual([pageUrl]);
    expect(failed).toEqual([]);
    expect(consoleErrors).toEqual([]);
    console.info(`report screenshot: ${screenshotPath}`);
  }, 120_000);
});
