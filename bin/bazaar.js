#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so `npm start` and `npx bazaar` need no build step.
require("tsx/cjs");
require("../src/cli/main.ts");
