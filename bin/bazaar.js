#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so `npm start` and `npx bazaar` need no build step:
// its CommonJS hook for what `require` loads, its ESM hook for modules loaded on demand with `import()`
// (the development chain).
require("tsx/cjs");
import("tsx/esm/api")
  .then(({ register }) => {
    register();
    require("../src/cli/main.ts");
  })
  .catch((err) => {
    process.stderr.write(`bazaar: ${err.stack ?? err}\n`);
    process.exit(1);
  });
