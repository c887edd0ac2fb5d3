/**
 * `describe` for a suite that needs a tool outside Node (Chromium, the .venv Python oracles,
 * an MLflow extra). With the tool it is an ordinary describe. Without it:
 * - on CI (CI=true) the suite FAILS: CI installs what the tests need (.ci/run), so a missing
 *   tool there is a broken set-up, not a reason to pass;
 * - locally the suite is skipped, loudly: a banner on stderr now, and the reason in the suite's
 *   title, which scripts/run-tests.mjs lists under its summary.
 */
export interface RequiredTool {
  /** What is missing, e.g. 'Chromium at /usr/bin/chromium'. */
  tool: string;
  available: boolean;
  /** How to get it, e.g. 'apt-get install -y chromium'. */
  install: string;
}

export function describeWithTool(need: RequiredTool): (name: string, body: () => void) => void {
  if (need.available) return (name, body) => describe(name, body);
  const reason = `${need.tool} is missing (${need.install})`;
  if (process.env.CI === 'true')
    return (name) =>
      describe(name, () => {
        test(`needs ${need.tool}`, () => {
          throw new Error(`${reason}; CI must install it, so this suite fails instead of skipping`);
        });
      });
  return (name, body) => {
    process.stderr.write(`\n!!! SKIPPED suite "${name}": ${reason}\n\n`);
    describe.skip(`${name} [SKIPPED: ${reason}]`, body);
  };
}
