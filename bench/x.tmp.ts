import { governancePipeline } from "./governance-pipeline.bench";
governancePipeline(1500).then((r) => { console.log(r.cpuMsPerCase, r.decidedCasesPerSecond); process.exit(0); });
