import pino, { type DestinationStream, type Logger } from "pino";

/** Keys whose values never reach a log line, wherever they appear (a config object, an error's context). */
const SECRETS = ["jwtSecret", "walletSeed", "walletHotKey", "privateKey", "sandboxSecret", "adminPassword"];

/**
 * JSON logs to stdout; every line carries the node, and children add service and trace ids. `traceOf`
 * names the trace of the work running now (message tracing), for lines that do not name one themselves.
 */
export function createLogger(level: string, nodeId: string, traceOf?: () => string | undefined, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { node: nodeId },
    mixin: traceOf
      ? (line: object) => {
          const traceId = "traceId" in line ? undefined : traceOf();
          return traceId === undefined ? {} : { traceId };
        }
      : undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...SECRETS, ...SECRETS.map((k) => `*.${k}`)], censor: "[secret]" },
  };
  return destination ? pino(options, destination) : pino(options);
}
