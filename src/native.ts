// Kept so that imports of '../native.js' from modules outside src/native/ keep working; the
// module's public entry is src/native/index.ts.
export * from './native/index.js';
