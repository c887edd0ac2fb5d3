import {
  MlflowClient,
  connectionFromEnv,
  decodeMetricValue,
  encodeMetricValue,
  flattenParams,
  redactUri,
  splitBatch,
  truncateValue,
  validateArtifactPath,
} from '../../../src/tracking/index.js';
import { parseTrackingUri, authorizationHeader } from '../../../src/tracking/connection.js';

test('splitBatch respects 1000 metrics / 100 params / 100 tags / 1000 entities per request', () => {
  const metric = (i: number) => ({ key: 'm', value: i, timestamp: i, step: i });
  const chunks = splitBatch({
    metrics: Array.from({ length: 2500 }, (_, i) => metric(i)),
    params: Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: 'v' })),
    tags: Array.from({ length: 150 }, (_, i) => ({ key: `t${i}`, value: 'v' })),
  });
  for (const chunk of chunks) {
    expect(chunk.metrics.length).toBeLessThanOrEqual(1000);
    expect(chunk.params.length).toBeLessThanOrEqual(100);
    expect(chunk.tags.length).toBeLessThanOrEqual(100);
    expect(chunk.metrics.length + chunk.params.length + chunk.tags.length).toBeLessThanOrEqual(
      1000,
    );
  }
  const metrics = chunks.flatMap((chunk) => chunk.metrics.map((m) => m.step));
  expect(metrics).toEqual(Array.from({ length: 2500 }, (_, i) => i)); // order kept
  expect(chunks.flatMap((chunk) => chunk.params)).toHaveLength(250);
  expect(chunks.flatMap((chunk) => chunk.tags)).toHaveLength(150);
});

test('flattenParams: dotted keys, JSON for non-strings, truncation with a marker', () => {
  expect(
    flattenParams({
      a: { b: 1, c: [true, 'x'] },
      s: 'text',
      n: null,
      e: {},
      long: 'y'.repeat(7000),
    }),
  ).toEqual([
    { key: 'a.b', value: '1' },
    { key: 'a.c.0', value: 'true' },
    { key: 'a.c.1', value: 'x' },
    { key: 's', value: 'text' },
    { key: 'n', value: 'null' },
    { key: 'e', value: '{}' },
    { key: 'long', value: truncateValue('y'.repeat(7000), 6000) },
  ]);
  expect(truncateValue('y'.repeat(7000), 6000)).toHaveLength(6000);
  expect(truncateValue('y'.repeat(7000), 6000).endsWith('...[truncated]')).toBe(true);
});

test('non-finite metric values use MLflow’s string encoding both ways', () => {
  expect([NaN, Infinity, -Infinity, 1.5].map(encodeMetricValue)).toEqual([
    'NaN',
    'Infinity',
    '-Infinity',
    1.5,
  ]);
  expect(decodeMetricValue('NaN')).toBeNaN();
  expect(decodeMetricValue(1.7976931348623157e308)).toBe(Infinity);
  expect(decodeMetricValue(-1.7976931348623157e308)).toBe(-Infinity);
  expect(decodeMetricValue('-Infinity')).toBe(-Infinity);
});

test('artifact paths: relative, normalized, no ..', () => {
  expect(validateArtifactPath('a//b/./c')).toBe('a/b/c');
  expect(() => validateArtifactPath('../x')).toThrow(/\.\./);
  expect(() => validateArtifactPath('a/../../x')).toThrow(/\.\./);
  expect(() => validateArtifactPath('/etc/passwd')).toThrow(/relative/);
  expect(() => validateArtifactPath('C:\\x')).toThrow(/relative/);
});

test('artifact URLs follow the mlflow-artifacts proxy mapping', async () => {
  const client = new MlflowClient({ trackingUri: 'https://mlflow.example:8443/prefix/' });
  expect(client.artifactUrl('mlflow-artifacts:/3/abc/artifacts', 'plots/loss curve.png')).toBe(
    'https://mlflow.example:8443/prefix/api/2.0/mlflow-artifacts/artifacts/3/abc/artifacts/plots/loss%20curve.png',
  );
  expect(client.artifactUrl('mlflow-artifacts://other:4242/3/abc/artifacts', 'f')).toBe(
    'https://other:4242/api/2.0/mlflow-artifacts/artifacts/3/abc/artifacts/f',
  );
  expect(() => client.artifactUrl('/local/mlruns/3/abc/artifacts', 'f')).toThrow(
    /--serve-artifacts/,
  );
  await client.close();
});

test('auth and TLS from the environment; credentials redacted', () => {
  expect(
    connectionFromEnv({
      MLFLOW_TRACKING_URI: 'https://h',
      MLFLOW_TRACKING_USERNAME: 'u',
      MLFLOW_TRACKING_PASSWORD: 'p',
      MLFLOW_TRACKING_TOKEN: 't',
      MLFLOW_TRACKING_INSECURE_TLS: 'true',
    }),
  ).toEqual({
    trackingUri: 'https://h',
    auth: { kind: 'basic', username: 'u', password: 'p' },
    tls: { insecure: true },
  });
  expect(
    connectionFromEnv({ MLFLOW_TRACKING_TOKEN: 't', MLFLOW_TRACKING_SERVER_CERT_PATH: '/ca.pem' }),
  ).toEqual({
    auth: { kind: 'bearer', token: 't' },
    tls: { caPath: '/ca.pem' },
  });
  expect(() =>
    connectionFromEnv({
      MLFLOW_TRACKING_INSECURE_TLS: '1',
      MLFLOW_TRACKING_SERVER_CERT_PATH: '/ca.pem',
    }),
  ).toThrow(/mutually exclusive/);
  expect(authorizationHeader({ kind: 'bearer', token: 'tok' })).toBe('Bearer tok');
  expect(authorizationHeader({ kind: 'basic', username: 'u', password: 'p' })).toBe(
    `Basic ${Buffer.from('u:p').toString('base64')}`,
  );
  expect(redactUri('http://user:secret@h:5000/x')).toBe('http://***@h:5000/x');
  expect(redactUri('http://h:5000')).toBe('http://h:5000');
  expect(parseTrackingUri('http://u:p%40ss@h:5000/')).toEqual({
    baseUrl: 'http://h:5000',
    auth: { kind: 'basic', username: 'u', password: 'p@ss' },
  });
  expect(() => parseTrackingUri('sqlite:///x.db')).toThrow(/http\(s\)/);
});
