import pino, { type Logger } from "pino";

/** Keys whose values never reach a log line, wherever they appear (a config object, an error's context). */
const SECRETS = ["jwtSecret", "walletSeed", "walletHotKey", "privateKey", "sandboxSecret", "adminPassword"];

/** JSON logs to stdout; every line carries the node, and children add service and trace ids. */
export function createLogger(level: string, nodeId: string): Logger {
  return pino({
    level,
    base: { node: nodeId },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...SECRETS, ...SECRETS.map((k) => `*.${k}`)], censor: "[secret]" },
  });
}
