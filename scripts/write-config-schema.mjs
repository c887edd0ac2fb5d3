#!/usr/bin/env node
// Writes configs/schema.json from the schema in src/config/schema.ts (built into dist/ first:
// `npm run schema`). The JSON file is for editors and readers outside TypeScript; the tool itself
// validates against the TypeBox value. test/unit/config/schema.test.ts fails while it is stale.
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { configSchemaJson } = await import(join(root, 'dist', 'config', 'schema.js'));
const target = join(root, 'configs', 'schema.json');
writeFileSync(target, configSchemaJson());
console.log(`wrote ${target}`);
