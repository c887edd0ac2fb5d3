import { NATIVE_ERROR_CODES, type NativeError, type NativeErrorCode } from './addonTypes.js';

/** The addon's error code of `error`, or undefined when it did not come from the addon. */
export function nativeErrorCode(error: unknown): NativeErrorCode | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return (NATIVE_ERROR_CODES as readonly unknown[]).includes(code)
    ? (code as NativeErrorCode)
    : undefined;
}

/** Whether `error` came from the addon (with `code` when given). Works across realms. */
export function isNativeError(error: unknown, code?: NativeErrorCode): error is NativeError {
  const actual = nativeErrorCode(error);
  return actual !== undefined && (code === undefined || actual === code);
}
