import { readFileSync } from 'node:fs';

/** How requests authenticate. Basic wins over bearer when both are configured, as in MLflow's Python client. */
export type TrackingAuth =
  { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string };

export interface TrackingTls {
  /** MLFLOW_TRACKING_INSECURE_TLS: skip certificate verification (self-signed dev servers). */
  insecure?: boolean;
  /** MLFLOW_TRACKING_SERVER_CERT_PATH: a CA bundle (PEM) to trust for the server's certificate. */
  caPath?: string;
}

export interface TrackingConnection {
  /** http(s) URI of the tracking server; undefined means "no server given". */
  trackingUri?: string;
  auth?: TrackingAuth;
  tls?: TrackingTls;
}

function truthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

/**
 * Reads the MLFLOW_TRACKING_* variables MLflow's own client reads. The insecure flag and a CA bundle
 * are mutually exclusive (MLflow refuses the combination too, and it is almost always a mistake).
 */
export function connectionFromEnv(env: NodeJS.ProcessEnv = process.env): TrackingConnection {
  const connection: TrackingConnection = {};
  const uri = env.MLFLOW_TRACKING_URI?.trim();
  if (uri !== undefined && uri !== '') connection.trackingUri = uri;
  const username = env.MLFLOW_TRACKING_USERNAME;
  const password = env.MLFLOW_TRACKING_PASSWORD;
  const token = env.MLFLOW_TRACKING_TOKEN;
  if (username !== undefined && username !== '' && password !== undefined) {
    connection.auth = { kind: 'basic', username, password };
  } else if (token !== undefined && token !== '') {
    connection.auth = { kind: 'bearer', token };
  }
  const insecure = truthy(env.MLFLOW_TRACKING_INSECURE_TLS);
  const caPath = env.MLFLOW_TRACKING_SERVER_CERT_PATH?.trim();
  if (insecure && caPath !== undefined && caPath !== '')
    throw new Error(
      'MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH are mutually exclusive: set one of them',
    );
  if (insecure) connection.tls = { insecure: true };
  else if (caPath !== undefined && caPath !== '') connection.tls = { caPath };
  return connection;
}

/** The URI with any `user:password@` replaced by `***@`, for logs, errors and saved configs. */
export function redactUri(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.username === '' && url.password === '') return uri;
    url.username = '***';
    url.password = '';
    return url.toString();
  } catch {
    // Not a parsable URL: blank anything that looks like userinfo before an '@'.
    return uri.replace(/\/\/[^/@]*@/, '//***@');
  }
}

/**
 * Splits a tracking URI into its base URL (no userinfo, no trailing slash) and credentials found in
 * it, since undici refuses URLs that carry credentials and they must not travel in logs.
 */
export function parseTrackingUri(uri: string): { baseUrl: string; auth?: TrackingAuth } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`Invalid MLflow tracking URI '${redactUri(uri)}': not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(
      `MLflow tracking URI '${redactUri(uri)}' must be http(s); local stores (sqlite:, file:) are served through a local server (resolveTracking)`,
    );
  let auth: TrackingAuth | undefined;
  if (url.username !== '') {
    auth = {
      kind: 'basic',
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    };
  }
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  const baseUrl = url.toString().replace(/\/+$/, '');
  return auth === undefined ? { baseUrl } : { baseUrl, auth };
}

export function authorizationHeader(auth: TrackingAuth | undefined): string | undefined {
  if (auth === undefined) return undefined;
  if (auth.kind === 'basic')
    return `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
  return `Bearer ${auth.token}`;
}

/** undici Agent `connect` options for the TLS settings. */
export function tlsConnectOptions(tls: TrackingTls | undefined): {
  rejectUnauthorized?: boolean;
  ca?: Buffer;
} {
  if (tls === undefined) return {};
  if (tls.insecure === true) return { rejectUnauthorized: false };
  if (tls.caPath !== undefined) {
    try {
      return { ca: readFileSync(tls.caPath) };
    } catch (error) {
      throw new Error(
        `Cannot read the CA bundle MLFLOW_TRACKING_SERVER_CERT_PATH='${tls.caPath}': ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  return {};
}
