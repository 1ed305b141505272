import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      exclude: ["src/**/*.test.ts", "src/cli/main.ts"],
      reporter: ["text-summary", "text"],
      thresholds: {
        lines: 80,
        "src/**/*.domain.ts": { lines: 90 },
      },
    },
  },
});
