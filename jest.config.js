/** Jest runs the TypeScript sources directly (ts-jest, ESM). Type checking is `npm run typecheck`. */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // test/gpu runs under node:test (npm run test:gpu, scripts/test-gpu.mjs), not jest.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/gpu/'],
  testTimeout: 120000,
};
