#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in dist/.
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2)));
