// The programmatic API of mentallam. Each module's public surface is re-exported here.
export { nativeInfo, setNumThreads, checkDevice } from './native.js';
export type { NativeInfo } from './native.js';
